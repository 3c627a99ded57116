/** Bounds on what one message may cost the scanner; past them the message is refused (5xx), never half-scanned. */
export interface AnalysisLimits {
  /** MIME nodes (leaves and containers) in the main reading. */
  maxParts: number;
  /** Nesting of multiparts and embedded messages, decoded ones included. */
  maxDepth: number;
  /** Bytes of one header block. */
  maxHeaderBytes: number;
  /** Contents derived under every interpretation, before dedup. */
  maxContents: number;
  /** Decoded contents up to this size are held in memory (archive checks, embedded messages, dedup). */
  maxMaterializeBytes: number;
}

export const DEFAULT_LIMITS: AnalysisLimits = {
  maxParts: 1000,
  maxDepth: 40,
  maxHeaderBytes: 1024 * 1024,
  maxContents: 4000,
  maxMaterializeBytes: 16 * 1024 * 1024,
};

/** The message is over a limit: refused as a whole (a policy limit, permanent). */
export class AnalysisLimitError extends Error {
  override name = 'AnalysisLimitError';
}
