// Small edits from the property panel, each one bpmn-js command (undoable, no re-import).
//   {op: 'name', id, value}                 the element's name (its label)
//   {op: 'fields', id, value}               our typed extension elements, as moddle trees {type, props} (made by
//                                           engine.bpmn.typed.panel_trees); id null: the process
//   {op: 'condition', id, value}            a sequence flow's conditionExpression (null: none)
//   {op: 'default', id, value}              a gateway's default flow id (null: none)
//   {op: 'timer', id, value: {kind, text}}  timeDuration / timeDate / timeCycle of the event's timer
//   {op: 'message', id, value}              the event's message (a bpmn:Message found or created by name)
//   {op: 'error', id, value}                the event's error (a bpmn:Error found or created by code)
//   {op: 'interrupting', id, value}         a boundary event's cancelActivity
//   {op: 'id', id, value}                   rename the element

function processElement(modeler) {
  const root = modeler.get('canvas').getRootElement();
  return root;
}

function processObject(root) {
  const bo = root.businessObject;
  if (bo.$instanceOf('bpmn:Collaboration')) {
    const participant = (bo.participants || []).find((p) => p.processRef);
    return participant ? participant.processRef : bo;
  }
  return bo;
}

function uniqueId(modeler, base) {
  const clean = String(base).replace(/[^\p{L}\p{N}_.-]/gu, '_');
  const stem = /^[\p{L}_]/u.test(clean) ? clean : `_${clean}`;
  const ids = modeler.get('moddle').ids;
  let id = stem;
  let n = 2;
  while (ids.assigned(id)) {
    id = `${stem}_${n}`;
    n += 1;
  }
  ids.claim(id, {});
  return id;
}

// Our elements the panel does not edit: the process-level records and drawing metadata stay as they are.
const KEPT = new Set(['waooaw:Ids', 'waooaw:Labels', 'waooaw:Layout', 'waooaw:Metadata']);

export function buildTree(moddle, tree) {
  const props = {};
  for (const [key, value] of Object.entries(tree.props)) {
    if (Array.isArray(value)) {
      props[key] = value.map((item) => buildTree(moddle, item));
    } else if (value && typeof value === 'object') {
      props[key] = buildTree(moddle, value);
    } else {
      props[key] = value;
    }
  }
  return moddle.create(tree.type, props);
}

// The extension values with ours replaced by the trees' elements (an old <waooaw:fields> goes too).
export function withFields(moddle, values, trees) {
  const ours = (v) => v.$type.startsWith('waooaw:') && !KEPT.has(v.$type);
  return [...(values || []).filter((v) => !ours(v)), ...(trees || []).map((tree) => buildTree(moddle, tree))];
}

function setFields(modeler, element, bo, trees) {
  const modeling = modeler.get('modeling');
  const moddle = modeler.get('moddle');
  let ext = bo.extensionElements;
  const values = withFields(moddle, ext ? ext.values : [], trees);
  if (!ext) {
    if (!values.length) {
      return;
    }
    ext = moddle.create('bpmn:ExtensionElements', { values });
    modeling.updateModdleProperties(element, bo, { extensionElements: ext });
  } else {
    modeling.updateModdleProperties(element, ext, { values });
  }
}

function rootElementByName(modeler, element, type, match, attrs) {
  const modeling = modeler.get('modeling');
  const moddle = modeler.get('moddle');
  const definitions = modeler.getDefinitions();
  const roots = definitions.rootElements || [];
  let found = roots.find((r) => r.$instanceOf(type) && match(r));
  if (!found) {
    found = moddle.create(type, { id: uniqueId(modeler, `${type.split(':')[1]}_${attrs.name}`), ...attrs });
    modeling.updateModdleProperties(element, definitions, { rootElements: [...roots, found] });
  }
  return found;
}

export function applyCommand(modeler, command) {
  const registry = modeler.get('elementRegistry');
  const modeling = modeler.get('modeling');
  const moddle = modeler.get('moddle');
  const element = command.id ? registry.get(command.id) : processElement(modeler);
  if (!element) {
    throw new Error(`no element ${command.id}`);
  }
  const bo = command.id ? element.businessObject : processObject(element);
  const value = command.value;
  const definition = (bo.eventDefinitions || [])[0];
  switch (command.op) {
    case 'name':
      if (command.id) {
        modeling.updateLabel(element, value || null);
      } else {  // the process has no label: updateLabel would leave its name as it was
        modeling.updateModdleProperties(element, bo, { name: value || undefined });
      }
      break;
    case 'fields':
      setFields(modeler, element, bo, value);
      break;
    case 'condition':
      modeling.updateProperties(element, {
        conditionExpression: value ? moddle.create('bpmn:FormalExpression', { body: value }) : undefined,
      });
      break;
    case 'default':
      modeling.updateProperties(element, { default: value ? registry.get(value).businessObject : undefined });
      break;
    case 'timer': {
      const prop = { duration: 'timeDuration', date: 'timeDate', cycle: 'timeCycle' }[value.kind];
      const props = { timeDuration: undefined, timeDate: undefined, timeCycle: undefined };
      if (prop && value.text) {
        props[prop] = moddle.create('bpmn:FormalExpression', { body: value.text });
      }
      modeling.updateModdleProperties(element, definition, props);
      break;
    }
    case 'message': {
      const message = value ? rootElementByName(modeler, element, 'bpmn:Message', (m) => m.name === value,
        { name: value }) : undefined;
      modeling.updateModdleProperties(element, definition, { messageRef: message });
      break;
    }
    case 'error': {
      const error = value ? rootElementByName(modeler, element, 'bpmn:Error', (e) => e.errorCode === value,
        { name: value, errorCode: value }) : undefined;
      modeling.updateModdleProperties(element, definition, { errorRef: error });
      break;
    }
    case 'interrupting':
      modeling.updateProperties(element, { cancelActivity: !!value });
      break;
    case 'id':
      modeling.updateProperties(element, { id: value });
      break;
    default:
      throw new Error(`unknown command ${command.op}`);
  }
}
