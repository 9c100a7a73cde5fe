/** Labels blosm reads from and puts on containers. */
export const LABEL = {
  /** "stateless" (default: make-before-break handover) or "stateful" (freeze, send the final delta, resume). */
  mode: "blosm.migration-mode",
  /** Readiness probe when the image has no healthcheck: "tcp://host:port" or "http://host:port/path". */
  probe: "blosm.ready-probe",
  serviceId: "blosm.service-id",
  appType: "blosm.app-type",
  /** Set on everything a migration creates, so a restarted worker can find and clean what it left. */
  migration: "blosm.migration",
  role: "blosm.role",
  /** On snapshot images: the source container's spec (base64 JSON), pinned with the image by its digest. */
  spec: "blosm.spec",
  /**
   * On snapshot images: the base image the first snapshot was built on, pinned by digest. A snapshot lives only in
   * its destination's private registry, so the next hop pre-stages this instead (later snapshots inherit it).
   */
  base: "blosm.base-image",
} as const;
