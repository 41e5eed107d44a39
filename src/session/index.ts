export {Session, withSession, type CommandResult, type Expectation, type SendOptions, type SessionOptions, type StateQuery, type SubscribeOptions, type SubscriptionItem} from './session.js'
