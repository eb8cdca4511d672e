// Node 20 ships String.prototype.{isWellFormed,toWellFormed} (ES2024), but the
// ES2024 lib would also admit APIs Node 20 lacks (Promise.withResolvers), so
// only these two are declared.
interface String {
  isWellFormed(): boolean;
  toWellFormed(): string;
}
