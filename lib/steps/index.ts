/** Several kernel and file calls in one native job: see run.ts. */
export * from './builders';
export * from './run';
