// Types for generate.mjs, so TypeScript tests can import it.
export interface Resource {
  resourceType: string;
  id: string;
  [k: string]: unknown;
}
export interface TransactionEntry {
  fullUrl: string;
  resource: Resource;
  request: { method: "PUT"; url: string };
}
export interface TransactionBundle {
  resourceType: "Bundle";
  type: "transaction";
  entry: TransactionEntry[];
}
export interface GenerateOptions {
  seed?: number;
  bulk?: number;
}
export declare const DEFAULT_SEED: number;
export declare const DEFAULT_BULK: number;
export declare const ELSEWHERE: string;
export declare const PATIENT_COMPARTMENT: Record<
  string,
  Record<string, (r: any) => ({ reference?: string } | undefined)[]>
>;
export declare const NO_COMPARTMENT_TYPES: string[];
export declare function localPatientId(reference: unknown): string | null;
export declare function referencesIn(resource: object): { path: string; reference: string }[];
export declare function buildResources(options?: GenerateOptions): Resource[];
/** The truth object; its shape is `Truth` in test/e2e/support/truth.ts. */
export declare function computeTruth(resources: Resource[], options?: GenerateOptions): any;
export declare function transactionBundle(
  resources: Resource[],
  options?: { seed?: number },
): TransactionBundle;
export declare function generate(options?: GenerateOptions): { transaction: TransactionBundle; truth: any };
