// One invariant of the audit: how many things it looked at, how many broke it, and a few of them to look at.
export interface CheckResult {
  name: string;
  /** How many things (orders, products, customers, rows) the check looked at. */
  checked: number;
  violations: number;
  /** The first few violations, for a person to look at. */
  examples: string[];
}

const EXAMPLES = 5;

export class Check {
  private readonly result: CheckResult;
  constructor(name: string) {
    this.result = { name, checked: 0, violations: 0, examples: [] };
  }
  expect(ok: boolean, describe: () => string): void {
    this.result.checked++;
    if (ok) return;
    this.result.violations++;
    if (this.result.examples.length < EXAMPLES) this.result.examples.push(describe());
  }
  done(): CheckResult {
    return this.result;
  }
}

