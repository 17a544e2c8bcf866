/** Helpers every layer shares: abortable waits, a per-key lock, an async event queue, Docker's size units. */
export { abortError, sleep } from './abort';
export { EventQueue } from './event-queue';
export { KeyedLock } from './keyed-lock';
export { parseSize, humanSize } from './units';
