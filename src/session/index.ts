export {Session, withSession, type CommandResult, type Expectation, type NodeStateResult, type SendOptions, type SessionOptions, type SubscribeOptions, type SubscriptionItem} from './session.js'
