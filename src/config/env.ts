/**
 * `${env:VAR}` and `${env:VAR:-default}` in config values.
 *
 * Substitution happens on the parsed document's scalar nodes, never on the
 * raw text: whatever an environment variable holds (newlines, `: `, `- `,
 * `&anchor`, `{`) it ends up as the characters of one string value and can
 * never change the structure of the file. Keys are not substituted; they are
 * schema names.
 *
 * `$${env:...}` is the escape for a literal `${env:...}`. Any other `${env:`
 * that does not form a valid reference is an error, so a typo such as
 * `${env:SHIP-TOKEN}` fails loudly instead of shipping the literal text as a
 * token.
 */
import { isMap, isScalar, isSeq, type Scalar } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { placeOfNode, type YamlSource } from './yaml.js';

const REFERENCE = /\$\$\{env:|\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{env:/g;

export interface EnvSubstitution {
  /** Scalars whose value came (at least partly) from the environment. */
  readonly substituted: ReadonlySet<Scalar>;
}

export function substituteEnv(src: YamlSource, env: NodeJS.ProcessEnv): EnvSubstitution {
  const substituted = new Set<Scalar>();
  // Explicit stack: the document was already checked for depth, but there is
  // no reason to recurse on the JS stack for it.
  const stack: unknown[] = [src.doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      for (const pair of node.items) stack.push(pair.value);
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${env:')) {
      node.value = substituteString(node.value, env, () => placeOfNode(src, node));
      substituted.add(node);
    }
    // Aliases are skipped on purpose: they share their anchor's node, which is
    // substituted where it is defined.
  }
  return { substituted };
}

/** Substitute one string. `where` names the place for errors. */
export function substituteString(
  value: string,
  env: NodeJS.ProcessEnv,
  where: () => { file?: string; line?: number; col?: number },
): string {
  return value.replace(REFERENCE, (match: string, name: string | undefined, fallback: string | undefined) => {
    if (match === '$${env:') return '${env:';
    if (name === undefined) {
      throw new ConfigError(
        'config_env_syntax',
        'malformed environment reference: use ${env:NAME} or ${env:NAME:-default} with NAME matching [A-Za-z_][A-Za-z0-9_]*',
        where(),
      );
    }
    const v = Object.hasOwn(env, name) ? env[name] : undefined;
    if (fallback !== undefined) {
      // Shell semantics for ":-": the default also replaces an empty value.
      return v === undefined || v === '' ? fallback : v;
    }
    if (v === undefined) {
      throw new ConfigError('config_env_missing', `environment variable ${name} is not set`, where());
    }
    return v;
  });
}
