// The Designer's canvas: bpmn-js's modeler as a Streamlit component (protocol v1, spoken directly).
//
// Python -> canvas (render args):
//   xml, revision       a new revision re-imports xml (a design opened, the YAML tab edited, an upload)
//   commands            [{seq, op, id, ...}] small edits from the property panel, applied once each through
//                       bpmn-js's command stack (so they can be undone) instead of a re-import
//   ack                 the last command seq Python knows applied (a reloaded frame, and every re-import, starts
//                       there; seqs are unique and increasing in the server process, app/designer.py _SEQS)
//   markers             [{id, severity, message}] validation problems drawn on their elements
//   select              {seq, id}: select the element and scroll it into view (a click in the problem list)
//   height              frame height in px
//   design              which design this is: a re-import of the same design keeps the view, another is fitted
//   palette             the create tools, one per node kind of the model (app/palette.py; see palette.js)
//   placeholders        {id: text}: what the app calls an unnamed element, drawn in grey where its name would be
//                       (not a name: the XML keeps none, app/designer.py placeholders)
// Canvas -> Python (component value): {seq, revision, ack, xml, selected} after every change or selection.
import BpmnModeler from 'bpmn-js/lib/Modeler';
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css';
import './canvas.css';
import waooaw from './waooaw-moddle.json';
import palette from './palette.js';
import { applyCommand } from './commands.js';

const modeler = new BpmnModeler({
  container: '#canvas',
  additionalModules: [palette],
  moddleExtensions: { waooaw },
});
window.bpmnModeler = modeler;

const state = { revision: null, ack: 0, selectSeq: 0, seq: 0, height: 0, markers: [], busy: false, imports: 0,
  placeholders: {} };
window.canvasState = state;  // for tests and debugging: what this frame has applied

function post(type, extra) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...extra }, '*');
}

let timer = null;
function report(delay) {
  clearTimeout(timer);
  timer = setTimeout(send, delay);
}

async function send() {
  if (state.busy) {
    return report(100);
  }
  const { xml } = await modeler.saveXML({ format: true });
  const selected = modeler.get('selection').get().map((e) => e.id);
  state.seq += 1;
  post('streamlit:setComponentValue', {
    dataType: 'json',
    value: { seq: state.seq, revision: state.revision, ack: state.ack, xml, selected },
  });
}

// Ids the exporter generates for flows name their ends ("start__end"): when a flow is reconnected (a task dropped
// on it, an end dragged elsewhere), such an id follows its new ends, in the same undoable step.
modeler.on('commandStack.connection.reconnect.postExecuted', (event) => {
  const { connection, oldSource, oldTarget } = event.context;
  const before = `${(oldSource || connection.source).id}__${(oldTarget || connection.target).id}`;
  const after = `${connection.source.id}__${connection.target.id}`;
  if (connection.id !== before || before === after || modeler.get('elementRegistry').get(after)) {
    return;
  }
  modeler.get('modeling').updateProperties(connection, { id: after });
});

// diagram-js toggles: a click on the one selected shape deselects it, and the panel would jump to the process.
// As in the property panels of desktop modelers, a click on the selected shape keeps it selected.
modeler.on('element.click', 1500, (event) => {
  const selected = modeler.get('selection').get();
  const original = event.originalEvent || {};
  const modifier = original.ctrlKey || original.metaKey || original.shiftKey;
  if (!modifier && selected.length === 1 && selected[0] === event.element) {
    return false;
  }
  return undefined;
});

modeler.on('commandStack.changed', () => {
  drawPlaceholders(state.placeholders);  // a name just typed replaces its placeholder at once
  report(250);
});
modeler.on('selection.changed', () => report(30));

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function drawMarkers(markers) {
  const canvas = modeler.get('canvas');
  const registry = modeler.get('elementRegistry');
  const overlays = modeler.get('overlays');
  for (const old of state.markers) {
    if (registry.get(old.id)) {
      canvas.removeMarker(old.id, `waooaw-${old.severity}`);
    }
  }
  overlays.remove({ type: 'waooaw-problem' });
  const byId = new Map();
  const root = canvas.getRootElement();
  for (const m of markers || []) {
    const target = registry.get(m.id);
    if (!target || target === root) {
      continue;
    }
    const list = byId.get(m.id) || [];
    list.push(m);
    byId.set(m.id, list);
  }
  const drawn = [];
  for (const [id, list] of byId) {
    const severity = list.some((m) => m.severity === 'error') ? 'error' : 'warning';
    const element = registry.get(id);
    canvas.addMarker(id, `waooaw-${severity}`);
    drawn.push({ id, severity });
    if (element.waypoints) {
      continue;  // a flow: its colour says it; an overlay would cover the line
    }
    const title = list.map((m) => m.message).join('\n');
    overlays.add(id, 'waooaw-problem', {
      position: { top: -12, right: 12 },
      html: `<div class="waooaw-badge waooaw-badge-${severity}" title="${escapeHtml(title)}">${list.length}</div>`,
    });
  }
  state.markers = drawn;
}

// An unnamed element's placeholder: inside a task's box, below an event or a gateway (where bpmn-js puts their
// labels); gone as soon as the element has a name.
function drawPlaceholders(placeholders) {
  const registry = modeler.get('elementRegistry');
  const overlays = modeler.get('overlays');
  overlays.remove({ type: 'waooaw-placeholder' });
  for (const [id, text] of Object.entries(placeholders || {})) {
    const element = registry.get(id);
    if (!element || element.waypoints || element.labelTarget || element.businessObject.name) {
      continue;
    }
    const outside = /Event$|Gateway$/.test(element.type);
    const expanded = !outside && element.businessObject.$instanceOf('bpmn:SubProcess') && element.isExpanded;
    const width = outside ? 100 : element.width - (expanded ? 12 : 8);
    const position = outside ? { top: element.height + 4, left: element.width / 2 - width / 2 }
      : { top: expanded ? 6 : element.height / 2 - 8, left: expanded ? 8 : 4 };
    overlays.add(id, 'waooaw-placeholder', {
      position,
      html: `<div class="waooaw-placeholder${expanded ? ' waooaw-placeholder-left' : ''}" style="width: ${width}px"`
        + ` title="No name: the app calls it this">${escapeHtml(text)}</div>`,
    });
  }
}

function select(id) {
  const element = modeler.get('elementRegistry').get(id);
  if (!element) {
    return;
  }
  modeler.get('selection').select(element);
  modeler.get('canvas').scrollToElement(element, { top: 120, bottom: 120, left: 160, right: 120 });
}

// A design as it opens: bpmn-js's zoom('fit-viewport') into the free part of the canvas (between the palette,
// which covers the canvas's left edge, and the zoom buttons on the right), centred there, never magnified past 1:1. Opening a design, the zoom stays
// at least READABLE (labels legible): a larger diagram then starts at its left edge beside the palette, centred
// vertically, and is scrolled with the wheel; a small one (less than half the free width: a new design) also starts
// beside the palette, leaving room to draw to its right. The Fit button fits it whole at any zoom, centred.
const READABLE = 0.8;
const MARGIN = 24;
function showAll(canvas, readable = false) {
  canvas.zoom('fit-viewport', 'auto');
  const { inner, outer } = canvas.viewbox();
  if (!inner.width || !inner.height) {
    return;
  }
  const palette = document.querySelector('.djs-palette');
  const zoom = document.getElementById('zoom');
  const left = (palette ? palette.getBoundingClientRect().right : 0) + MARGIN;
  const right = (zoom ? zoom.getBoundingClientRect().left : outer.width) - MARGIN;
  const free = { width: right - left, height: outer.height - 2 * MARGIN };
  const fit = Math.min(1, free.width / inner.width, free.height / inner.height);
  const scale = readable ? Math.max(fit, READABLE) : fit;
  const offset = (room, size) => Math.max(0, (room - size * scale) / 2);  // centred, or from the start edge
  const small = readable && inner.width * scale < free.width / 2;
  canvas.viewbox({
    x: inner.x - (left + (small ? 0 : offset(free.width, inner.width))) / scale,
    y: inner.y - (MARGIN + offset(free.height, inner.height)) / scale,
    width: outer.width / scale,
    height: outer.height / scale,
  });
}

async function render(args) {
  state.busy = true;
  try {
    if (args.height && args.height !== state.height) {
      state.height = args.height;
      document.getElementById('canvas').style.height = `${args.height}px`;
      post('streamlit:setFrameHeight', { height: args.height });
    }
    modeler.get('paletteProvider').setEntries(args.palette);
    if (args.revision !== state.revision) {
      const first = state.revision === null;
      const canvas = modeler.get('canvas');
      // The same design drawn again (the YAML tab, a save) keeps the view; another design is fitted to it.
      const keep = !first && args.keepView && args.design === state.design ? canvas.viewbox() : null;
      state.design = args.design;
      try {
        state.imports += 1;
        const result = await modeler.importXML(args.xml);
        document.getElementById('error').textContent = '';
        if (result.warnings.length) {
          console.warn('import warnings', result.warnings.map((w) => w.message));
        }
      } catch (err) {
        document.getElementById('error').textContent = `The canvas cannot show this design: ${err.message}`;
      }
      if (keep) {
        canvas.viewbox(keep);
      } else {
        showAll(canvas, true);
      }
      state.revision = args.revision;
      // Commands belong to the revision they were sent with: a re-import (another design opened or created in
      // this tab, the YAML tab) starts from the ack Python knows, never from what this frame applied before.
      state.ack = args.ack || 0;
    }
    for (const command of args.commands || []) {
      if (command.seq > state.ack) {
        try {
          applyCommand(modeler, command);
        } catch (err) {
          console.error('command failed', command, err);
        }
        state.ack = command.seq;
      }
    }
    drawMarkers(args.markers);
    state.placeholders = args.placeholders || {};
    drawPlaceholders(state.placeholders);
    // Leaving the page (reload, close) with unsaved work asks first, as desktop modelers do.
    window.onbeforeunload = args.dirty ? (event) => { event.preventDefault(); return ''; } : null;
    if (args.select && args.select.seq > state.selectSeq) {
      state.selectSeq = args.select.seq;
      select(args.select.id);
    }
  } finally {
    state.busy = false;
  }
}

function zoomBy(factor) {
  const canvas = modeler.get('canvas');
  canvas.zoom(Math.min(4, Math.max(0.2, canvas.zoom() * factor)));
}
document.getElementById('zoom-fit').addEventListener('click', () => showAll(modeler.get('canvas')));
document.getElementById('zoom-in').addEventListener('click', () => zoomBy(1.2));
document.getElementById('zoom-out').addEventListener('click', () => zoomBy(1 / 1.2));
document.getElementById('zoom-reset').addEventListener('click', () => modeler.get('canvas').zoom(1));

let queue = Promise.resolve();
window.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'streamlit:render') {
    const args = event.data.args || {};
    queue = queue.then(() => render(args));
  }
});

post('streamlit:componentReady', { apiVersion: 1 });
