export * from '../protocol/secret-refs.js'
