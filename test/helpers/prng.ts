// The PRNG lives under bench/ because bench is compiled by tsc and must not import from test/.
export { prng } from '../../bench/prng.js';
