/**
 * Every error code sealtrail gives, as one string-literal union per domain.
 *
 * The codes are a public contract (logs, HTTP bodies, CLI output, metric
 * labels, quarantine reasons): an existing code never changes. Each error
 * class is declared with the union of the codes it may carry (errors.ts and
 * the classes beside the modules that throw them), so a misspelt or unknown
 * code does not compile. A new condition gets a new code here, in its
 * domain's union, before anything can throw it.
 *
 * All unions live in core although most domains are not core's: the
 * root class must be able to name every code (a plain SealtrailError is
 * checked too), and core imports nothing outside itself. These are types
 * only; nothing here exists at run time.
 */

// ---- files (src/fs/) -------------------------------------------------------

/** What went wrong with a path, independent of the errno that said so (fs/file-errors.ts). */
export type FileProblem =
  | 'missing'
  | 'not_directory'
  | 'is_directory'
  | 'not_regular'
  | 'permission_denied'
  | 'exists'
  | 'loop'
  | 'read_only'
  | 'no_space'
  | 'name_too_long'
  | 'too_large'
  | 'io';

/**
 * Key, token and secret files (keyfiles.ts). key_file_missing (also for a
 * path through a non-directory) and key_file_invalid (also for too large)
 * predate the codes of the other problems.
 */
export type KeyFileCode = 'key_file_missing' | 'key_file_invalid' | `key_file_${Exclude<FileProblem, 'missing' | 'not_directory' | 'too_large'>}`;

/** FileError: `file_<problem>` by default, or the key file codes when read as one; file_not_private from private-files.ts. */
export type FileCode = `file_${FileProblem}` | 'file_not_private' | KeyFileCode;

// ---- config and redaction rules ---------------------------------------------

/** A redaction detector that cannot be used (DetectorError); the ConfigError code it becomes. */
export type DetectorCode = 'redaction_unknown_detector' | 'redaction_rule_invalid';

/** Rule files: shape, composition (include/disable/packs) and compilation. */
export type RedactionCode =
  | DetectorCode
  | 'redaction_include_cycle'
  | 'redaction_rule_duplicate'
  | 'redaction_scope_invalid'
  | 'redaction_too_many_files'
  | 'redaction_too_many_rules'
  | 'redaction_unknown_key'
  | 'redaction_unknown_pack'
  | 'redaction_unknown_rule';

/** UnitError (config/units.ts): the ConfigError code the loader reports it with (sizes and durations, host:port). */
export type UnitCode = 'config_unit' | 'config_schema';

/**
 * ConfigError: the loader's own codes, rule files, and the files a config
 * names (key files; a FileError met creating or reading one keeps its code).
 */
export type ConfigCode =
  | 'config_yaml'
  | 'config_schema'
  | 'config_env_missing'
  | 'config_env_syntax'
  | 'config_unit'
  | 'config_io'
  | RedactionCode
  | FileCode
  | 'token_file_invalid'
  | 'collector_keys_required';

// ---- core ---------------------------------------------------------------------

/** InputError: a line or event that cannot become a record (quarantine reasons). */
export type InputCode =
  | 'record_invalid'
  | 'record_not_object'
  | 'redact_too_deep'
  /** the line is not of the source's `format` (an OTLP line without resourceSpans, a CloudEvent without specversion) */
  | 'format_mismatch'
  /** a `format: mapped` mapping could not produce a required field (no event_type, a time it cannot read) */
  | 'mapping_failed'
  /** an OTLP request with more spans or log records than the source's max_items */
  | 'otlp_too_many_items'
  /** a request body over its source's max_body_bytes once decoded */
  | 'body_too_large'
  /** a gzip body that does not inflate */
  | 'gzip_invalid';

/** CanonicalError: RFC 8785 refused a value. */
export type CanonicalCode = 'canonical_invalid' | 'canonical_too_deep';

/** NoteError: signed notes, checkpoints, verifier and signer keys. */
export type NoteCode =
  | 'note_malformed'
  | 'note_key_invalid'
  | 'note_ambiguous_key'
  | 'note_invalid_signature'
  | 'note_unverified'
  | 'checkpoint_invalid';

/** ProofError: Merkle proofs and frontiers, in core and as the collector builds them from its store. */
export type ProofCode = 'proof_out_of_range' | 'proof_hash_missing' | 'proof_leaf_missing' | 'proof_too_expensive' | 'frontier_invalid';

/** BufferError: the sidecar's buffer, and a database opened as evidence (`verify --db`, `report --db`). */
export type BufferCode =
  | 'stream_id_invalid'
  | 'buffer_stream_mismatch'
  | 'seq_gap'
  | 'batch_incomplete'
  | 'buffer_disk_low'
  | 'buffer_no_anchor'
  | 'schema_too_new'
  | 'db_open_failed'
  | 'db_unknown'
  | 'db_unreadable';

// ---- HTTP answers (HttpError) ---------------------------------------------------

/** Faults of a request body that both listeners refuse alike. */
export type BodyCode = 'body_too_large' | 'content_encoding_unsupported' | 'gzip_invalid';

/** POST /v1/batches: the batch refused (core/wire-batch.ts, collector/verify-batch.ts, routes/batches.ts, stream-keys.ts). */
export type BatchCode =
  | 'batch_malformed'
  | 'batch_not_canonical'
  | 'batch_origin_mismatch'
  | 'batch_bad_signature'
  | 'batch_key_expired'
  | 'batch_key_not_yet_valid'
  | 'batch_gap'
  | 'batch_seq_gap'
  | 'batch_record_invalid'
  | 'batch_record_mismatch'
  | 'batch_root_mismatch'
  | 'batch_chain_broken'
  | 'batch_fork'
  | 'batch_conflict'
  | 'stream_unknown'
  | 'stream_reserved'
  /** collector.ship_identities: no ship token or listed client certificate */
  | 'ship_identity_required'
  /** collector.ship_identities: a ship token that matches no token_sha256 */
  | 'ship_identity_unknown'
  /** collector.ship_identities: the sender's identity does not list this stream */
  | 'stream_forbidden';

/**
 * The collector's other answers: authentication, the query API, the request
 * itself (including Fastify's and Node's own refusals, renamed), and a proof
 * the store cannot give (ProofCode, answered 500).
 */
export type ApiCode =
  | BodyCode
  | ProofCode
  | 'unauthorized'
  | 'forbidden'
  /** collector.tls.client_ca_file is set and the connection's client certificate is missing or does not verify */
  | ListenerTlsCode
  | 'admin_required'
  | 'tenant_forbidden'
  | 'rate_limited'
  | 'authorization_repeated'
  | 'content_type_repeated'
  | 'unsupported_media_type'
  | 'body_incomplete'
  | 'body_malformed'
  | 'bad_request'
  | 'request_timeout'
  | 'headers_too_large'
  | 'not_found'
  | 'internal'
  | 'query_invalid'
  | 'range_too_large'
  | 'stream_invalid'
  | 'stream_not_found'
  | 'record_not_found'
  | 'checkpoint_unknown'
  | 'proof_unavailable'
  | 'proofs_unavailable'
  | 'report_unavailable'
  | 'read_audit_failed'
  | 'store_unavailable';

/**
 * Every listener with client_ca_file in its `tls` block (collector.tls,
 * sidecar.telemetry.tls, an otlp source's tls): the connection's client
 * certificate is missing or does not verify (expired, another CA); the
 * message says which (src/tls/server-tls.ts clientRefusal).
 */
export type ListenerTlsCode = 'client_certificate_refused';

/** The sidecar's POST /v1/events (sidecar/sources/events-body.ts, http-events.ts) and the rest of its telemetry port. */
export type EventsCode =
  | BodyCode
  | ListenerTlsCode
  | 'method_not_allowed'
  | 'content_type_unsupported'
  | 'body_empty'
  | 'invalid_utf8'
  | 'json_invalid'
  | 'record_not_object'
  | 'too_many_events'
  | 'shutting_down'
  | 'buffer_full'
  | 'busy'
  | 'commit_failed';

/**
 * OtlpRefusal (sidecar/sources/otlp-request.ts): what the OTLP receiver
 * answers with; the data refusals also become quarantine reasons.
 */
export type OtlpCode =
  | InputCode
  | ListenerTlsCode
  | 'not_found'
  | 'method_not_allowed'
  | 'content_type_unsupported'
  | 'content_encoding_unsupported'
  | 'body_too_large'
  | 'gzip_invalid'
  | 'shutting_down'
  | 'buffer_full'
  | 'busy'
  | 'commit_failed'
  | 'internal_error';

/** HttpError: what an HTTP error body of either listener may say. */
export type HttpCode = BatchCode | ApiCode | EventsCode;

/** ScanError (events-body.ts): the JSON scanner's refusal, answered as json_invalid. */
export type ScanCode = 'json_invalid';

// ---- collector store -------------------------------------------------------------

/** StoreError (collector/store/): a store that cannot be opened or used. */
export type StoreCode =
  | 'store_open_failed'
  | 'store_closed'
  | 'store_schema_missing'
  | 'store_schema_outdated'
  | 'store_schema_newer'
  | 'store_migration_failed'
  | 'store_unavailable'
  | 'store_invalid_append'
  | 'proofs_unavailable';

/** The store's single-code classes: StoreConflictError (another writer won), CopyEncodeError (pg-copy-text.ts). */
export type StoreWriteCode = 'store_conflict' | 'copy_unencodable';

// ---- sidecar sources -------------------------------------------------------------

/** What a source throws from its constructor or start(), or reports through onError (sidecar/sources/source.ts). */
export type SourceCode =
  | 'source_config_invalid'
  | 'source_state'
  | 'source_sink_failed'
  | 'source_discovery_failed'
  | 'source_watch_failed'
  | 'source_open_failed'
  | 'source_read_failed'
  | 'socket_in_use'
  | 'socket_listen_failed'
  | 'socket_server_error'
  | 'socket_chmod_failed'
  | 'socket_unlink_failed'
  | 'socket_path_invalid'
  | 'socket_path_not_socket'
  | 'socket_sink_outcomes'
  | 'socket_sink_failed';

// ---- what an auditor runs (evidence/, verify/, report/) ---------------------------

/** Talking to a live collector: FetchError (verify/from-url.ts); CollectorRequestError (evidence/http.ts) also refuses a bad URL. */
export type RemoteCode = 'collector_unreachable' | 'collector_refused' | 'collector_bad_answer';
export type CollectorRequestCode = RemoteCode | 'usage_url';

/** ExportError (evidence/build.ts). */
export type ExportCode = 'collector_bad_answer' | 'export_key_missing' | 'export_dir_not_empty';

/**
 * ProofCheckError (verify/record-proof.ts): an inclusion or consistency
 * proof answer of the query API, checked in the reader's own process.
 */
export type ProofCheckCode =
  | 'proof_malformed'
  | 'verifier_key_invalid'
  | 'checkpoint_malformed'
  | 'checkpoint_signature_invalid'
  | 'checkpoint_origin_mismatch'
  | 'record_mismatch'
  | 'proof_invalid';

/** ReportParamError (report/params.ts): the code GET /v1/report answers it with. */
export type ReportParamCode = 'query_invalid';

// ---- TLS (src/tls/) ----------------------------------------------------------------

/**
 * TlsError: a certificate, key or CA file that is readable but unusable
 * (files that cannot be read at all are FileErrors, `file_<problem>`).
 */
export type TlsCode =
  /** no PEM block of the expected kind, or one OpenSSL cannot parse */
  | 'tls_pem_invalid'
  /** the private key is not the certificate's */
  | 'tls_key_mismatch'
  /** cert_file without key_file (or the reverse), or a file TLS refused as a whole */
  | 'tls_options_invalid';

// ---- everything else --------------------------------------------------------------

/** Options given to a library entry point (startCollector, the telemetry server; http-limits.ts). */
export type OptionsCode = 'collector_options_invalid' | 'telemetry_options_invalid';

/**
 * Errors thrown as a plain SealtrailError: bad options, a listener that
 * cannot bind, a stream id collectors reserve, a chain MAC of the wrong size,
 * a database `report --db` cannot read, an installation missing the OTLP
 * definitions it ships with.
 */
export type PlainCode =
  | OptionsCode
  | 'listen_failed'
  | 'package_incomplete'
  | 'stream_reserved'
  | 'chain_invalid'
  | 'db_unreadable';

/** UsageError (cli/usage.ts): the CLI's exit 2. */
export type UsageCode = 'usage';

/** ClientError (src/client/errors.ts): what sealtrail/client rejects an emit or its options with. */
export type ClientCode =
  /** an option is missing, of the wrong type or out of range (the message names it) */
  | 'client_options_invalid'
  /** emit() after close(), or an emit still pending when close() gave up */
  | 'client_closed'
  /** maxQueue events (or maxQueueBytes) are already waiting for their answers */
  | 'client_queue_full'
  /** failClosed: no answer within ackTimeoutMs; the event may or may not be stored */
  | 'client_ack_timeout'
  /** the event would be refused by the sidecar (checked with the sidecar's own code); not sent */
  | 'client_event_invalid'
  /** the serialised event is longer than maxEventBytes; not sent */
  | 'client_event_too_large'
  /** the sidecar answered that it did not store the event (its code is in `reason`) */
  | 'client_event_refused'
  /** the file transport could not write or fsync the line */
  | 'client_write_failed'
  /** close({ timeoutMs }) ran out before every event was answered */
  | 'client_flush_timeout'
  /** reaching the sidecar failed (given to onConnectionError only; the client retries) */
  | 'client_connection_failed';

/** Every code, the bound of SealtrailError's type parameter. */
export type ErrorCode =
  | ConfigCode
  | InputCode
  | CanonicalCode
  | NoteCode
  | ProofCode
  | BufferCode
  | HttpCode
  | StoreCode
  | StoreWriteCode
  | SourceCode
  | CollectorRequestCode
  | ExportCode
  | ProofCheckCode
  | ReportParamCode
  | ScanCode
  | UnitCode
  | PlainCode
  | UsageCode
  | ClientCode
  | TlsCode;
