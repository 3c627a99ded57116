/**
 * The list of reasons an archive is corrupt. The first one found is the headline of `detail`;
 * the rest are only counted, so hostile input with a million faults costs a counter, not a list.
 */
export class Problems {
  private first: string | undefined;
  private count = 0;

  add(reason: string): void {
    if (this.count === 0) this.first = reason;
    this.count++;
  }

  /** Records a parser exception as a problem: hostile input must never escape as a throw. */
  addError(context: string, err: unknown): void {
    this.add(`${context}: ${err instanceof Error ? err.message : String(err)}`);
  }

  get any(): boolean {
    return this.count > 0;
  }

  get detail(): string | undefined {
    if (!this.first) return undefined;
    return this.count > 1 ? `${this.first} (and ${this.count - 1} more problem${this.count > 2 ? 's' : ''})` : this.first;
  }
}
