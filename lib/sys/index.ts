/** The kernel calls besides device-mapper that the library needs. */
export * from './loop';
export * from './block';
export * from './mount';
export * from './file';
