import { HttpError } from '../core/errors.js';

/** A token bucket's shape: `burst` requests at once, refilled at `requests_per_second`. */
export interface RateLimit {
  requests_per_second: number;
  burst: number;
}

/** The request budgets of the query API; see docs/access.md. */
export interface RateLimits {
  /** per admin token */
  admin: RateLimit;
  /** per reader (tenant) token: these are handed to many consumers, so the budget is smaller */
  reader: RateLimit;
  /** per client IP, spent only by failed authentications */
  failures: RateLimit;
}

/**
 * What a config without `auth.rate_limit` gets. The admin budget is large
 * because `sealtrail verify --url` pages through whole streams with it and
 * does not retry on 429.
 */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  admin: { requests_per_second: 200, burst: 400 },
  reader: { requests_per_second: 20, burst: 40 },
  failures: { requests_per_second: 1, burst: 20 },
};

/** 429 with a Retry-After (whole seconds, at least 1); app.ts sets the header. */
export class RateLimitedError extends HttpError<'rate_limited'> {
  readonly retryAfter: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(429, 'rate_limited', message);
    this.retryAfter = retryAfterSeconds;
  }
}

interface Bucket {
  tokens: number;
  /** ms, monotonic */
  at: number;
}

/**
 * In-memory token buckets by key. Per replica: N replicas behind a load
 * balancer allow up to N times the budget, which is the point of a budget
 * per replica (protect this process and its store connections), not a quota.
 * The map is bounded: when it is full, buckets that have refilled completely
 * are dropped (they are indistinguishable from new ones), and if none has,
 * the longest-known key goes.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly rate: number;
  private readonly burst: number;

  constructor(
    limit: RateLimit,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(limit.requests_per_second > 0) || !Number.isFinite(limit.requests_per_second)) {
      throw new TypeError('rate limit: requests_per_second must be a positive number');
    }
    if (!Number.isSafeInteger(limit.burst) || limit.burst < 1) throw new TypeError('rate limit: burst must be a positive integer');
    this.rate = limit.requests_per_second / 1000;
    this.burst = limit.burst;
  }

  private refill(key: string): Bucket {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.evict(t);
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + (t - b.at) * this.rate);
      b.at = t;
    }
    return b;
  }

  private evict(t: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (t - b.at) * this.rate >= this.burst) this.buckets.delete(k);
    }
    if (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
  }

  /** Seconds until one request is allowed again; 0 when one is allowed now (nothing taken). */
  wait(key: string): number {
    const b = this.refill(key);
    return b.tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - b.tokens) / this.rate / 1000));
  }

  /** Takes one request from `key`'s bucket; returns the seconds to wait instead when it is empty. */
  take(key: string): number {
    const wait = this.wait(key);
    if (wait === 0) this.buckets.get(key)!.tokens -= 1;
    return wait;
  }
}
