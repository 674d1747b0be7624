// Workflow entry point for the worker's bundle: only deterministic code is reachable from here.
export { OrderSaga } from './order-saga';
