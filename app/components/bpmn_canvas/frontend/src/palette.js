// The palette. Its create tools are not written here: the Python side generates one per node kind of the process
// model (app/palette.py) and sends them with the render arguments (`palette`), so a kind added to the model
// appears without frontend work. Tools (hand, lasso, space, connect) come from bpmn-js.
//
// An entry: {action, kind, group, type, icon, title, options}; options may hold eventDefinitionType,
// cancelActivity, isForCompensation, expression: [property, text] (the event definition's formal expression,
// e.g. a timer's timeDuration), definition: {attribute: value} (e.g. a link's name) and message: a name (a send
// task's message, found or created), properties: {attribute: value} of the element (a script task's script),
// container: 'eventSubProcess' (the shape is made inside a new event sub-process), start: an event sub-process's
// start event definition.

function PaletteProvider(palette, create, elementFactory, spaceTool, lassoTool, handTool, globalConnect, translate,
  moddle, eventBus, modeling, bpmnjs) {
  this._palette = palette;
  this._moddle = moddle;
  this._create = create;
  this._elementFactory = elementFactory;
  this._spaceTool = spaceTool;
  this._lassoTool = lassoTool;
  this._handTool = handTool;
  this._globalConnect = globalConnect;
  this._translate = translate;
  this._entries = [];
  this._key = '';
  palette.registerProvider(this);
  // A task that needs a message to be its kind (a send task is a message throw only with one) gets it in the
  // same undoable step as its creation.
  eventBus.on('commandStack.shape.create.postExecuted', (event) => {
    const shape = event.context.shape;
    const name = shape && shape.waooawMessage;
    if (!name || shape.businessObject.messageRef) {
      return;
    }
    delete shape.waooawMessage;
    const definitions = bpmnjs.getDefinitions();
    const roots = definitions.rootElements || [];
    let message = roots.find((r) => r.$instanceOf('bpmn:Message') && r.name === name);
    if (!message) {
      message = moddle.create('bpmn:Message', { id: moddle.ids.nextPrefixed('Message_', {}), name });
      modeling.updateModdleProperties(shape, definitions, { rootElements: [...roots, message] });
    }
    modeling.updateModdleProperties(shape, shape.businessObject, { messageRef: message });
  });
}

PaletteProvider.$inject = ['palette', 'create', 'elementFactory', 'spaceTool', 'lassoTool', 'handTool',
  'globalConnect', 'translate', 'moddle', 'eventBus', 'modeling', 'bpmnjs'];

// New entries from the render arguments; the palette is drawn again only when they changed.
PaletteProvider.prototype.setEntries = function(entries) {
  const key = JSON.stringify(entries || []);
  if (key === this._key) {
    return;
  }
  this._key = key;
  this._entries = entries || [];
  this._palette._rebuild();
};

PaletteProvider.prototype._shape = function(entry) {
  const { eventDefinitionType, cancelActivity, isForCompensation, expression, definition, message, properties } =
    entry.options || {};
  const attrs = { type: entry.type };
  if (eventDefinitionType) {
    attrs.eventDefinitionType = eventDefinitionType;
  }
  if (cancelActivity === false) {
    attrs.cancelActivity = false;
  }
  const shape = this._elementFactory.createShape(attrs);
  const bo = shape.businessObject;
  if (isForCompensation) {
    bo.isForCompensation = true;
  }
  if (properties) {
    Object.assign(bo, properties);
  }
  const eventDefinition = (bo.eventDefinitions || [])[0];
  if (eventDefinition && expression) {
    const [prop, text] = expression;
    eventDefinition[prop] = this._moddle.create('bpmn:FormalExpression', { body: text });
    eventDefinition[prop].$parent = eventDefinition;
  }
  if (eventDefinition && definition) {
    Object.assign(eventDefinition, definition);
  }
  if (message) {
    shape.waooawMessage = message;
  }
  return shape;
};

PaletteProvider.prototype.getPaletteEntries = function() {
  const translate = this._translate;
  const actions = {
    'hand-tool': { group: 'tools', className: 'bpmn-icon-hand-tool', title: translate('Hand tool (H)'),
      action: { click: (event) => this._handTool.activateHand(event) } },
    'lasso-tool': { group: 'tools', className: 'bpmn-icon-lasso-tool', title: translate('Lasso tool (L)'),
      action: { click: (event) => this._lassoTool.activateSelection(event) } },
    'space-tool': { group: 'tools', className: 'bpmn-icon-space-tool', title: translate('Create/remove space (S)'),
      action: { click: (event) => this._spaceTool.activateSelection(event) } },
    'global-connect-tool': { group: 'tools', className: 'bpmn-icon-connection-multi',
      title: translate('Connect (C)'), action: { click: (event) => this._globalConnect.start(event) } },
    'tool-separator': { group: 'tools', separator: true },
  };
  for (const entry of this._entries) {
    const container = (entry.options || {}).container;
    let start = (event) => this._create.start(event, this._shape(entry));
    if (entry.type === 'bpmn:SubProcess') {
      start = (event) => this._subProcess(event, container === 'eventSubProcess', entry.options.start);
    } else if (entry.type === 'bpmn:Transaction' || container === 'transaction') {
      start = (event) => this._transaction(event, entry.options.cancelEnd, entry.options.cancelBoundary);
    } else if (entry.type === 'bpmn:AdHocSubProcess') {
      start = (event) => this._adHoc(event);
    } else if (container === 'eventSubProcess') {
      start = (event) => this._subProcess(event, true, null, this._shape(entry));
    }
    actions[entry.action] = { group: entry.group, className: entry.icon, title: translate(entry.title),
      action: { dragstart: start, click: start } };
  }
  return actions;
};

// An expanded sub-process with its start event (an event sub-process: triggeredByEvent, and its start given or
// made with the event definition named).
PaletteProvider.prototype._subProcess = function(event, triggered, definition, startShape) {
  const elementFactory = this._elementFactory;
  const attrs = { type: 'bpmn:SubProcess', x: 0, y: 0, isExpanded: true };
  if (triggered) {
    attrs.triggeredByEvent = true;
  }
  const sub = elementFactory.createShape(attrs);
  const startAttrs = { type: 'bpmn:StartEvent' };
  if (definition) {
    startAttrs.eventDefinitionType = definition;
  }
  const start = startShape || elementFactory.createShape(startAttrs);
  Object.assign(start, { x: 40, y: 82, parent: sub });
  this._create.start(event, [sub, start], { hints: { autoSelect: [startShape ? start : sub] } });
};

// An expanded transaction with its start event, and (asked by the "transaction with cancel events" entry) a cancel
// end event inside and a cancel boundary event on its lower border. The boundary event is attached as a paste
// attaches one. The cancel end and cancel boundary entries of their own make just the event: bpmn-js's rules keep
// it when it is dropped into / onto a transaction and make it plain elsewhere.
PaletteProvider.prototype._transaction = function(event, cancelEnd, cancelBoundary) {
  const elementFactory = this._elementFactory;
  const sub = elementFactory.createShape({ type: 'bpmn:Transaction', x: 0, y: 0, isExpanded: true });
  const start = elementFactory.createShape({ type: 'bpmn:StartEvent' });
  Object.assign(start, { x: 40, y: 82, parent: sub });
  const elements = [sub, start];
  if (cancelEnd) {
    const end = elementFactory.createShape({ type: 'bpmn:EndEvent', eventDefinitionType: 'bpmn:CancelEventDefinition' });
    Object.assign(end, { x: sub.width - 80, y: 82, parent: sub });
    elements.push(end);
  }
  if (cancelBoundary) {
    const boundary = elementFactory.createShape({ type: 'bpmn:BoundaryEvent',
      eventDefinitionType: 'bpmn:CancelEventDefinition', host: sub });
    boundary.businessObject.attachedToRef = sub.businessObject;
    Object.assign(boundary, { x: sub.width / 2 - 18, y: sub.height - 18 });
    elements.push(boundary);
  }
  this._create.start(event, elements, { hints: { autoSelect: [sub] } });
};

// An expanded ad-hoc sub-process with a first task inside (it has no start event: what it runs is what it
// activates, and it needs at least one activity).
PaletteProvider.prototype._adHoc = function(event) {
  const elementFactory = this._elementFactory;
  const sub = elementFactory.createShape({ type: 'bpmn:AdHocSubProcess', x: 0, y: 0, isExpanded: true });
  const task = elementFactory.createShape({ type: 'bpmn:Task' });
  Object.assign(task, { x: 40, y: 60, parent: sub });
  this._create.start(event, [sub, task], { hints: { autoSelect: [sub] } });
};

export default {
  __init__: ['paletteProvider'],
  paletteProvider: ['type', PaletteProvider],
};
