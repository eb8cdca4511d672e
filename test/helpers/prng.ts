export { prng } from '../harness/prng.js';
