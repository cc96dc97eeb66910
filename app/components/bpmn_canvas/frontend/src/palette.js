// The palette: every node kind the process model has (engine/model/nodes.py), grouped as bpmn.io groups them.
// Tools come from bpmn-js; each create entry makes the standard BPMN element the exporter writes for the kind.

const EVENT = 'bpmn:TimerEventDefinition';
const MESSAGE = 'bpmn:MessageEventDefinition';
const ERROR = 'bpmn:ErrorEventDefinition';
const TERMINATE = 'bpmn:TerminateEventDefinition';
const COMPENSATE = 'bpmn:CompensateEventDefinition';

// [action, group, bpmn type, icon, title, options]
export const ENTRIES = [
  ['start-event', 'event', 'bpmn:StartEvent', 'bpmn-icon-start-event-none', 'Start event', {}],
  ['timer-start-event', 'event', 'bpmn:StartEvent', 'bpmn-icon-start-event-timer', 'Timer start event',
    { eventDefinitionType: EVENT }],
  ['message-start-event', 'event', 'bpmn:StartEvent', 'bpmn-icon-start-event-message', 'Message start event',
    { eventDefinitionType: MESSAGE }],
  ['end-event', 'event', 'bpmn:EndEvent', 'bpmn-icon-end-event-none', 'End event', {}],
  ['terminate-end-event', 'event', 'bpmn:EndEvent', 'bpmn-icon-end-event-terminate', 'Terminate end event',
    { eventDefinitionType: TERMINATE }],
  ['error-end-event', 'event', 'bpmn:EndEvent', 'bpmn-icon-end-event-error', 'Error end event',
    { eventDefinitionType: ERROR }],
  ['message-end-event', 'event', 'bpmn:EndEvent', 'bpmn-icon-end-event-message', 'Message end event',
    { eventDefinitionType: MESSAGE }],
  ['timer-catch-event', 'event', 'bpmn:IntermediateCatchEvent', 'bpmn-icon-intermediate-event-catch-timer',
    'Timer catch event (wait); drop it on a task\'s border for a timer boundary event',
    { eventDefinitionType: EVENT }],
  ['message-catch-event', 'event', 'bpmn:IntermediateCatchEvent', 'bpmn-icon-intermediate-event-catch-message',
    'Message catch event; drop it on a task\'s border for a message boundary event',
    { eventDefinitionType: MESSAGE }],
  ['message-throw-event', 'event', 'bpmn:IntermediateThrowEvent', 'bpmn-icon-intermediate-event-throw-message',
    'Message throw event', { eventDefinitionType: MESSAGE }],
  ['compensation-throw-event', 'event', 'bpmn:IntermediateThrowEvent',
    'bpmn-icon-intermediate-event-throw-compensation', 'Compensation throw event (undo completed work)',
    { eventDefinitionType: COMPENSATE }],
  ['timer-boundary-event', 'boundary', 'bpmn:BoundaryEvent', 'bpmn-icon-intermediate-event-catch-timer',
    'Timer boundary event, interrupting (drop it on a task)', { eventDefinitionType: EVENT }],
  ['timer-boundary-event-non-interrupting', 'boundary', 'bpmn:BoundaryEvent',
    'bpmn-icon-intermediate-event-catch-non-interrupting-timer',
    'Timer boundary event, non-interrupting (drop it on a task)', { eventDefinitionType: EVENT, cancelActivity: false }],
  ['message-boundary-event', 'boundary', 'bpmn:BoundaryEvent', 'bpmn-icon-intermediate-event-catch-message',
    'Message boundary event, interrupting (drop it on a task)', { eventDefinitionType: MESSAGE }],
  ['message-boundary-event-non-interrupting', 'boundary', 'bpmn:BoundaryEvent',
    'bpmn-icon-intermediate-event-catch-non-interrupting-message',
    'Message boundary event, non-interrupting (drop it on a task)',
    { eventDefinitionType: MESSAGE, cancelActivity: false }],
  ['error-boundary-event', 'boundary', 'bpmn:BoundaryEvent', 'bpmn-icon-intermediate-event-catch-error',
    'Error boundary event (drop it on a task)', { eventDefinitionType: ERROR }],
  ['compensation-boundary-event', 'boundary', 'bpmn:BoundaryEvent',
    'bpmn-icon-intermediate-event-catch-compensation',
    'Compensation boundary event (drop it on a task, then connect it to its handler)',
    { eventDefinitionType: COMPENSATE }],
  ['exclusive-gateway', 'gateway', 'bpmn:ExclusiveGateway', 'bpmn-icon-gateway-xor', 'Exclusive gateway (XOR)', {}],
  ['parallel-gateway', 'gateway', 'bpmn:ParallelGateway', 'bpmn-icon-gateway-parallel', 'Parallel gateway (AND)', {}],
  ['inclusive-gateway', 'gateway', 'bpmn:InclusiveGateway', 'bpmn-icon-gateway-or', 'Inclusive gateway (OR)', {}],
  ['event-based-gateway', 'gateway', 'bpmn:EventBasedGateway', 'bpmn-icon-gateway-eventbased',
    'Event-based gateway (the first event wins)', {}],
  ['task', 'activity', 'bpmn:Task', 'bpmn-icon-task', 'Task (no code runs)', {}],
  ['service-task', 'activity', 'bpmn:ServiceTask', 'bpmn-icon-service-task', 'Service task (an agent does it)', {}],
  ['user-task', 'activity', 'bpmn:UserTask', 'bpmn-icon-user-task', 'User task (a person does it)', {}],
  ['compensation-handler', 'activity', 'bpmn:ServiceTask', 'bpmn-icon-service-task',
    'Compensation handler (a service task that undoes an activity)', { isForCompensation: true }],
];

// A timer event needs a value to be a timer the model can hold (and the property panel can edit): a new one
// starts with one (a start: weekdays at 09:00; a wait or deadline: one hour), changed in the panel.
const DEFAULT_TIMER = { 'bpmn:StartEvent': ['timeCycle', '0 9 * * 1-5'] };
const DEFAULT_WAIT = ['timeDuration', 'PT1H'];

function PaletteProvider(palette, create, elementFactory, spaceTool, lassoTool, handTool, globalConnect, translate,
  moddle) {
  this._moddle = moddle;
  this._create = create;
  this._elementFactory = elementFactory;
  this._spaceTool = spaceTool;
  this._lassoTool = lassoTool;
  this._handTool = handTool;
  this._globalConnect = globalConnect;
  this._translate = translate;
  palette.registerProvider(this);
}

PaletteProvider.$inject = ['palette', 'create', 'elementFactory', 'spaceTool', 'lassoTool', 'handTool',
  'globalConnect', 'translate', 'moddle'];

PaletteProvider.prototype.getPaletteEntries = function() {
  const { _create: create, _elementFactory: elementFactory, _translate: translate } = this;
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
  for (const [name, group, type, icon, title, options] of ENTRIES) {
    const start = (event) => {
      const { isForCompensation, ...shapeOptions } = options;
      const shape = elementFactory.createShape({ type, ...shapeOptions });
      if (isForCompensation) {
        shape.businessObject.isForCompensation = true;
      }
      if (options.eventDefinitionType === EVENT) {
        const [prop, text] = DEFAULT_TIMER[type] || DEFAULT_WAIT;
        const definition = shape.businessObject.eventDefinitions[0];
        definition[prop] = this._moddle.create('bpmn:FormalExpression', { body: text });
        definition[prop].$parent = definition;
      }
      create.start(event, shape);
    };
    actions[`create.${name}`] = { group, className: icon, title: translate(title),
      action: { dragstart: start, click: start } };
  }
  actions['create.subprocess-expanded'] = {
    group: 'activity', className: 'bpmn-icon-subprocess-expanded', title: translate('Embedded sub-process'),
    action: {
      dragstart: (event) => this._subProcess(event),
      click: (event) => this._subProcess(event),
    },
  };
  return actions;
};

PaletteProvider.prototype._subProcess = function(event) {
  const elementFactory = this._elementFactory;
  const sub = elementFactory.createShape({ type: 'bpmn:SubProcess', x: 0, y: 0, isExpanded: true });
  const start = elementFactory.createShape({ type: 'bpmn:StartEvent', x: 40, y: 82, parent: sub });
  this._create.start(event, [sub, start], { hints: { autoSelect: [sub] } });
};

export default {
  __init__: ['paletteProvider'],
  paletteProvider: ['type', PaletteProvider],
};
