/** The worker's queues (BullMQ), one per kind of work, each with its own concurrency. */
export const QUEUES = ["evaluate", "transfer-out", "transfer-in", "record", "cleanup"] as const;
export type QueueName = (typeof QUEUES)[number];

export const STEPS = ["evaluate", "finalize", "expire", "snapshot", "prestage", "restore", "retire", "release", "ended"] as const;
export type StepName = (typeof STEPS)[number];

/** A job carries only the migration id (and the pinned digest for restore); steps read the rest from the chain. */
export type StepJob = { step: StepName; id: string; digest?: string };

/** A job to enqueue: deterministic id (BullMQ ignores a second add with the same id), optional delay. */
export type JobSpec = { queue: QueueName; jobId: string; data: StepJob; delayMs?: number };
