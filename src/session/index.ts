export {Session, withSession, type CommandResult, type Expectation, type SendOptions, type SessionOptions, type SubscribeOptions, type SubscriptionItem} from './session.js'
