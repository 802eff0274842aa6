/**
 * Constants of the on-disk snapshot format: an OCI image layout whose manifests are
 * vmlet snapshots. docs/snapshot-format.md describes the format; changing anything here
 * is a format change: read docs/snapshot-versioning.md first (test/snapshot-format-constants.test.ts
 * pins these values).
 */

/** Version of the config blob's schema and meaning. */
export const SNAPSHOT_FORMAT_VERSION = 1;

export const OCI_LAYOUT_FILE = "oci-layout";
export const OCI_LAYOUT_VERSION = "1.0.0";
export const INDEX_FILE = "index.json";
export const BLOBS_DIR = "blobs/sha256";
/** flock(2)ed by writers; not part of the OCI layout (tools ignore it). */
export const LOCK_FILE = ".vmlet.lock";
/** Prefix of blobs and index files being written; renamed into place once complete. */
export const TEMP_PREFIX = ".tmp-";

export const MEDIA_TYPE = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  artifact: "application/vnd.vmlet.snapshot.v1",
  config: "application/vnd.vmlet.snapshot.config.v1+json",
  memory: "application/vnd.vmlet.snapshot.memory.v1",
  /** Pages that differ from the layer below (file/diff-layer.ts). */
  memoryDiff: "application/vnd.vmlet.snapshot.memory-diff.v1",
  guestElf: "application/vnd.vmlet.snapshot.guest-elf.v1",
} as const;

export const ANNOTATION = {
  refName: "org.opencontainers.image.ref.name",
  created: "org.opencontainers.image.created",
  title: "org.opencontainers.image.title",
  version: "org.opencontainers.image.version",
  guest: "dev.vmlet.snapshot.guest",
  memorySize: "dev.vmlet.snapshot.memory-size",
  generation: "dev.vmlet.snapshot.generation",
} as const;

/** Size caps for what the loader reads into memory; larger files are refused unread. */
export const MAX_BYTES = {
  layoutFile: 4096,
  index: 4 * 1024 * 1024,
  manifest: 1024 * 1024,
  config: 4 * 1024 * 1024,
  guestElf: 64 * 1024 * 1024,
} as const;

/** Most memory layers (one full layer and the diffs over it) a snapshot may stack; a deeper chain is refused, unread. */
export const MAX_MEMORY_LAYERS = 64;

/** OCI tag grammar (image-spec, distribution-spec). */
export const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** Digest with the one algorithm vmlet writes and accepts. */
export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
