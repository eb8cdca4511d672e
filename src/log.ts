import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs on stderr (stdout stays free for command output).
 * Contract: no caller may log a record body, a raw input line, a token or a
 * key; log places (stream, seq, batch, source, path, offset) and codes.
 */
export function createLogger(name: string, level = process.env.SEALTRAIL_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { program: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
