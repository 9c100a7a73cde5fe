import type Docker from "dockerode";

/** One line of the Engine's JSON progress stream (push, pull, import). */
export type ProgressEvent = {
  status?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  progressDetail?: { current?: number; total?: number };
  aux?: { Digest?: string; Tag?: string; Size?: number };
};

export function followProgress(docker: Docker, stream: NodeJS.ReadableStream, onEvent: (e: ProgressEvent) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (event: ProgressEvent) => {
        try {
          onEvent(event);
        } catch (e) {
          (stream as unknown as { destroy?: () => void }).destroy?.();
          reject(e);
        }
      },
    );
  });
}
