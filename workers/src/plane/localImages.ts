import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type Docker from "dockerode";
import { followProgress } from "../engine/progress.ts";

/** A folder as a tar stream (GNU tar from the base system). */
function tarOf(dir: string): NodeJS.ReadableStream {
  const child = spawn("tar", ["-C", dir, "-c", "."], { stdio: ["ignore", "pipe", "inherit"] });
  return child.stdout!;
}

const APPLETS = ["sh", "ls", "cat", "echo", "sleep", "httpd", "nc", "wc", "head", "dd", "sha256sum", "date", "mkdir", "rm", "true", "kill", "trap", "env", "tr", "seq", "printf", "test", "[", "grep", "cut", "od", "chmod"];

/**
 * Imports a minimal base image from Debian's busybox-static (no public registry can be reached here):
 * /bin/busybox and its applets, /tmp, /etc/passwd.
 */
export async function importBusyboxBase(docker: Docker, reference = "blosm/busybox:base"): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "blosm-rootfs-"));
  try {
    await mkdir(path.join(dir, "bin"), { recursive: true });
    await mkdir(path.join(dir, "tmp"), { mode: 0o1777 });
    await mkdir(path.join(dir, "etc"));
    await cp("/bin/busybox", path.join(dir, "bin/busybox"));
    for (const applet of APPLETS) await symlink("busybox", path.join(dir, "bin", applet));
    await writeFile(path.join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
    const [repo, tag] = splitReference(reference);
    const stream = (await docker.importImage(tarOf(dir) as never, { repo, tag } as never)) as unknown as NodeJS.ReadableStream;
    await followProgress(docker, stream, (e) => {
      if (e.error) throw new Error(`import of ${reference} failed: ${e.error}`);
    });
    return reference;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A file of a build's context: its content, and its mode where not the default (scripts ending .sh: 0755, else 0644). */
export type ContextFile = string | Buffer | { content: string | Buffer; mode: number };

/**
 * Builds an image from a Dockerfile and files (host network: engines here run without a bridge). COPY keeps each
 * file's mode, so an executable needs no `RUN chmod` layer (which would hold a second copy of it).
 */
export async function buildImage(docker: Docker, reference: string, files: Record<string, ContextFile>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "blosm-build-"));
  try {
    for (const [name, file] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      const { content, mode } = typeof file === "object" && !Buffer.isBuffer(file) ? file : { content: file, mode: name.endsWith(".sh") ? 0o755 : 0o644 };
      await writeFile(path.join(dir, name), content, { mode });
    }
    const stream = await docker.buildImage(tarOf(dir) as never, { t: reference, networkmode: "host", rm: true, forcerm: true });
    await followProgress(docker, stream, (e) => {
      if (e.error) throw new Error(`build of ${reference} failed: ${e.error}`);
    });
    return reference;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function splitReference(reference: string): [string, string] {
  const i = reference.lastIndexOf(":");
  return i > reference.lastIndexOf("/") ? [reference.slice(0, i), reference.slice(i + 1)] : [reference, "latest"];
}
