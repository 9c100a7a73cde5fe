/*
 * blosm's sample inference server: BloSM's two services (driver profiling on CAN-bus windows, image recognition on
 * camera frames) in shape and cost, as one long-running process per container that answers each request itself,
 * the way an inference server (TensorFlow Serving, Triton) does.
 *
 * Why not a CGI: the first sample apps were busybox httpd CGIs, some twenty short processes per answer, and on a
 * shared machine each of them waited behind whatever ran on its CPU when it woke, at any priority
 * (`npm run bench:contention`). A service's answer then depended on the work of a migration anywhere on the machine,
 * which no real inference server's does.
 *
 * The "model" is a fixed two-layer network whose weights are drawn from a counter-based generator (nothing to load,
 * nothing trained): the answer depends only on the request, costs real compute that grows with the hidden width, and
 * holds no state between requests (stateless, as in BloSM).
 *
 *   infer [-m MODEL] [-p [ADDRESS:]PORT] [-v]     MODEL: driver-profiling | image-recognition (default: $INFER_MODEL)
 *   environment: INFER_MODEL, INFER_PATH (default /infer), INFER_HIDDEN (hidden width, default per model)
 *
 * Built statically (gcc -static) into the busybox image: no libc or runtime in the image.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_HEADER 16384
#define IDLE_SECONDS 60   /* a keep-alive connection with nothing pending is closed after this */
#define REQUEST_SECONDS 10 /* a request that has begun must arrive whole within this */
/* Request bytes held at once, all connections together: well inside the 64 MiB a sample app's container gets, so
 * many large uploads at once are refused (503) rather than the app killed for its memory. */
#define MAX_BUFFERED (24u << 20)

typedef struct {
  const char *name;
  size_t max_body;
  int hidden;
  /* Writes the JSON answer for a valid request into out, or an error (status set) naming what is wrong. */
  void (*answer)(const unsigned char *body, size_t len, int hidden, int *status, char *out, size_t cap);
} Model;

/* splitmix64: a weight is a pure function of its layer and position, so the model needs no memory or file. */
static inline double weight(uint64_t layer, uint64_t i) {
  uint64_t z = (layer << 40) + i + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* x (n inputs) -> tanh hidden layer -> 10 logits -> softmax; returns the winning class and its probability. */
static int forward(const double *x, int n, int hidden, double *p_out) {
  double logits[10] = {0};
  const double in_scale = 1.0 / sqrt((double)n), out_scale = 3.0 / sqrt((double)hidden);
  for (int j = 0; j < hidden; j++) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i] * weight(1, (uint64_t)j * (uint64_t)n + (uint64_t)i);
    double h = tanh(s * in_scale);
    for (int k = 0; k < 10; k++) logits[k] += h * weight(2, (uint64_t)j * 10 + (uint64_t)k);
  }
  int best = 0;
  double max = logits[0] * out_scale, sum = 0;
  for (int k = 1; k < 10; k++) if (logits[k] * out_scale > max) max = logits[k] * out_scale, best = k;
  for (int k = 0; k < 10; k++) sum += exp(logits[k] * out_scale - max);
  *p_out = 1.0 / sum;
  return best;
}

/* Two decimals below 1 ("0.99" at most), as the first sample apps answered. */
static int hundredths(double p) {
  int c = (int)(p * 100);
  return c > 99 ? 99 : c < 0 ? 0 : c;
}

/* A window is 600 numbers (40 samples x 15 features), separated by anything that is not part of a number. */
static void driver_profiling(const unsigned char *body, size_t len, int hidden, int *status, char *out, size_t cap) {
  static double x[600];
  size_t n = 0;
  for (size_t i = 0; i < len;) {
    size_t j = i;
    int digit = 0;
    while (j < len && (body[j] == '-' || body[j] == '.' || (body[j] >= '0' && body[j] <= '9'))) digit |= body[j] >= '0' && body[j] <= '9', j++;
    if (j == i) { i++; continue; }
    if (digit) {
      if (n < 600) {
        char tok[64];
        size_t l = j - i < sizeof tok - 1 ? j - i : sizeof tok - 1;
        memcpy(tok, body + i, l), tok[l] = 0;
        x[n] = (strtod(tok, NULL) - 50.0) / 50.0;
      }
      n++;
    }
    i = j;
  }
  if (n != 600) {
    *status = 422;
    snprintf(out, cap, "{\"error\":\"expected 600 features (40x15), got %zu\"}\n", n);
    return;
  }
  double p;
  int driver = forward(x, 600, hidden, &p);
  *status = 200;
  snprintf(out, cap, "{\"driverId\":%d,\"confidence\":0.%02d}\n", driver, hundredths(p));
}

/* A frame (binary PPM/PGM, PNG or JPEG) is reduced to its byte histogram: the work grows with the image. */
static void image_recognition(const unsigned char *body, size_t len, int hidden, int *status, char *out, size_t cap) {
  static const char *names[10] = {"person", "bicycle", "car", "motorcycle", "bus", "truck", "traffic-light", "stop-sign", "dog", "cat"};
  int ok = len >= 4 && ((body[0] == 'P' && (body[1] == '5' || body[1] == '6')) || !memcmp(body, "\x89PNG", 4) ||
                        (body[0] == 0xff && body[1] == 0xd8 && body[2] == 0xff));
  if (!ok) {
    *status = 415;
    snprintf(out, cap, "{\"error\":\"not a PPM, PGM, PNG or JPEG image\"}\n");
    return;
  }
  double x[256] = {0};
  for (size_t i = 0; i < len; i++) x[body[i]] += 1;
  for (int i = 0; i < 256; i++) x[i] = x[i] * 256.0 / (double)len - 1.0;
  double p;
  int object = forward(x, 256, hidden, &p);
  *status = 200;
  snprintf(out, cap, "{\"objectId\":%d,\"name\":\"%s\",\"probability\":0.%02d}\n", object, names[object], hundredths(p));
}

/* Hidden widths sized so one answer costs about 4 ms of one core here (a 2020s x86 server), near the 6 ms the first
 * sample apps took, most of it their process starts. */
static const Model MODELS[] = {
  {"driver-profiling", 64 * 1024, 4096, driver_profiling},
  {"image-recognition", 1024 * 1024, 8192, image_recognition},
};

typedef struct {
  int fd;
  unsigned char *buf;
  size_t len, cap;
  time_t since; /* when the pending request began, or when the connection went idle */
} Conn;

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static const Model *model;
static const char *app_path;
static int hidden, verbose;

static const char *reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

/* Small answers: written whole, waiting at most a second for a client that does not read. */
static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) { p += w, n -= (size_t)w; continue; }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd q = {fd, POLLOUT, 0};
      if (poll(&q, 1, 1000) > 0) continue;
    }
    return -1;
  }
  return 0;
}

static int reply(int fd, int status, const char *json, int keep_alive) {
  char head[256];
  int h = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s%s\r\n",
                   status, reason(status), strlen(json), status == 405 ? "Allow: POST\r\n" : "", keep_alive ? "" : "Connection: close\r\n");
  return send_all(fd, head, (size_t)h) || send_all(fd, json, strlen(json)) ? -1 : 0;
}

static size_t buffered; /* the sum of every connection's buffer */

static void close_conn(Conn *c) {
  close(c->fd);
  free(c->buf);
  buffered -= c->cap;
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

/* The value of header `name` in the header block [h, end), or NULL; *n is its length. */
static const char *header(const char *h, const char *end, const char *name, size_t *n) {
  size_t nl = strlen(name);
  for (const char *line = memchr(h, '\n', (size_t)(end - h)); line && line + 1 < end; line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
    const char *s = line + 1;
    if ((size_t)(end - s) > nl && !strncasecmp(s, name, nl) && s[nl] == ':') {
      const char *v = s + nl + 1, *e = memchr(v, '\n', (size_t)(end - v));
      if (!e) e = end;
      while (v < e && (*v == ' ' || *v == '\t')) v++;
      while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
      *n = (size_t)(e - v);
      return v;
    }
  }
  return NULL;
}

static double ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/*
 * Serves every whole request in c's buffer. Returns 0 to keep the connection, -1 to close it (an error answered,
 * Connection: close, or the peer gone).
 */
static int serve(Conn *c) {
  for (;;) {
    unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) {
      if (c->len > MAX_HEADER) return reply(c->fd, 431, "{\"error\":\"request headers larger than 16 KiB\"}\n", 0), -1;
      return 0;
    }
    const char *h = (const char *)c->buf, *hend = (const char *)end + 2;
    char line[1100], method[16], target[1024], version[16], rest;
    const char *eol = memchr(h, '\r', (size_t)(hend - h));
    size_t ll = (size_t)(eol - h) < sizeof line - 1 ? (size_t)(eol - h) : sizeof line - 1;
    memcpy(line, h, ll), line[ll] = 0;
    if (sscanf(line, "%15s %1023s %15s %c", method, target, version, &rest) != 3 || strncmp(version, "HTTP/1.", 7))
      return reply(c->fd, 400, "{\"error\":\"not an HTTP/1.x request line\"}\n", 0), -1;
    size_t n;
    const char *v;
    if (header(h, hend, "Transfer-Encoding", &n))
      return reply(c->fd, 411, "{\"error\":\"send the body with a Content-Length, not a transfer encoding\"}\n", 0), -1;
    size_t body_len = 0;
    if ((v = header(h, hend, "Content-Length", &n))) {
      if (n == 0 || n > 9 || strspn(v, "0123456789") < n) return reply(c->fd, 400, "{\"error\":\"Content-Length is not a number\"}\n", 0), -1;
      body_len = (size_t)strtoul(v, NULL, 10);
    }
    int keep = !strcmp(version, "HTTP/1.1");
    if ((v = header(h, hend, "Connection", &n))) keep = keep ? !(n == 5 && !strncasecmp(v, "close", 5)) : (n == 10 && !strncasecmp(v, "keep-alive", 10));
    char *q = strchr(target, '?');
    if (q) *q = 0;
    int ours = !strcmp(target, app_path);
    if (body_len > model->max_body) {
      char e[128];
      snprintf(e, sizeof e, "{\"error\":\"body of %zu bytes; %s takes at most %zu\"}\n", body_len, model->name, model->max_body);
      return reply(c->fd, 413, e, 0), -1;
    }
    size_t head_len = (size_t)(end + 4 - c->buf);
    if (c->len < head_len + body_len) {
      /* curl asks before sending a larger body; everything else just sends it. */
      if ((v = header(h, hend, "Expect", &n)) && n == 12 && !strncasecmp(v, "100-continue", 12) && c->len == head_len)
        if (send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25)) return -1;
      return 0;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char out[512];
    int status;
    if (!ours) {
      status = 404;
      snprintf(out, sizeof out, "{\"error\":\"no such path; POST requests to %s\"}\n", app_path);
    } else if (strcmp(method, "POST")) {
      status = 405;
      snprintf(out, sizeof out, "{\"error\":\"%s answers POST only: %s\"}\n", app_path,
               model->answer == driver_profiling ? "a 40x15 window of CAN features (at most 64 KiB)" : "an image (PPM, PGM, PNG or JPEG) of at most 1 MiB");
    } else if (body_len == 0) {
      status = 400;
      snprintf(out, sizeof out, "{\"error\":\"empty body: POST %s\"}\n",
               model->answer == driver_profiling ? "a 40x15 window of CAN features" : "an image (PPM, PGM, PNG or JPEG)");
    } else {
      model->answer(c->buf + head_len, body_len, hidden, &status, out, sizeof out);
    }
    if (verbose) fprintf(stderr, "infer: %s %s %d %.1f ms\n", method, target, status, ms_since(&t0));
    if (reply(c->fd, status, out, keep) || !keep) return -1;
    memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len); /* a pipelined next request */
    c->len -= head_len + body_len;
    c->since = time(NULL);
    if (c->len == 0 && c->cap > 65536) { /* an idle connection keeps no large upload's buffer */
      free(c->buf);
      buffered -= c->cap;
      c->buf = NULL, c->cap = 0;
    }
  }
}

static int usage(const char *problem) {
  if (problem) fprintf(stderr, "infer: %s\n", problem);
  fprintf(stderr, "usage: infer [-m driver-profiling|image-recognition] [-p [ADDRESS:]PORT] [-v]\n"
                  "  -m  the model (default: $INFER_MODEL)   -p  where to listen (default 8080)   -v  log each request\n"
                  "  environment: INFER_PATH (request path, default /infer), INFER_HIDDEN (hidden width, 1-65536)\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *model_name = getenv("INFER_MODEL"), *listen_at = "8080";
  int opt;
  while ((opt = getopt(argc, argv, "m:p:vh")) != -1) {
    if (opt == 'm') model_name = optarg;
    else if (opt == 'p') listen_at = optarg;
    else if (opt == 'v') verbose = 1;
    else return usage(opt == 'h' ? NULL : "unknown option");
  }
  if (optind < argc) return usage("unexpected argument");
  if (!model_name || !*model_name) return usage("no model: pass -m or set INFER_MODEL");
  for (size_t i = 0; i < sizeof MODELS / sizeof *MODELS; i++) if (!strcmp(MODELS[i].name, model_name)) model = &MODELS[i];
  if (!model) return fprintf(stderr, "infer: unknown model \"%s\"\n", model_name), usage(NULL);
  app_path = getenv("INFER_PATH") && *getenv("INFER_PATH") ? getenv("INFER_PATH") : "/infer";
  /* It is written into answers' JSON: a path's plain characters only. */
  if (app_path[0] != '/' || strlen(app_path) > 200 || strspn(app_path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-._~") != strlen(app_path))
    return usage("INFER_PATH must be a path starting with / (letters, digits and / - . _ ~, at most 200)");
  hidden = model->hidden;
  if (getenv("INFER_HIDDEN")) {
    char *e;
    long w = strtol(getenv("INFER_HIDDEN"), &e, 10);
    if (*e || w < 1 || w > 65536) return usage("INFER_HIDDEN must be a whole number from 1 to 65536");
    hidden = (int)w;
  }

  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
  const char *colon = strrchr(listen_at, ':'), *port_text = colon ? colon + 1 : listen_at;
  char *e;
  long port = strtol(port_text, &e, 10);
  if (*e || !*port_text || port < 1 || port > 65535) return usage("the port must be a number from 1 to 65535");
  addr.sin_port = htons((uint16_t)port);
  if (colon) {
    char host[64];
    size_t l = (size_t)(colon - listen_at);
    if (l >= sizeof host) return usage("the address is too long");
    memcpy(host, listen_at, l), host[l] = 0;
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return usage("the address must be an IPv4 address");
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 128)) {
    fprintf(stderr, "infer: cannot listen on %s: %s\n", listen_at, strerror(errno));
    return 1;
  }
  /* PID 1 in a container has no default action for SIGTERM: without a handler `docker stop` would wait 10 s. */
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL), sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  fprintf(stderr, "infer: %s (hidden width %d) answering POST %s on %s\n", model->name, hidden, app_path, listen_at);

  static Conn conns[MAX_CONNS];
  static struct pollfd fds[MAX_CONNS + 1];
  for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
  while (!stopping) {
    fds[0] = (struct pollfd){lfd, POLLIN, 0};
    for (int i = 0; i < MAX_CONNS; i++) fds[i + 1] = (struct pollfd){conns[i].fd, POLLIN, 0};
    int ready = poll(fds, MAX_CONNS + 1, 1000);
    if (ready < 0 && errno != EINTR) return perror("infer: poll"), 1;
    time_t now = time(NULL);
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      int fd;
      while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        int slot = -1;
        for (int i = 0; i < MAX_CONNS && slot < 0; i++) if (conns[i].fd < 0) slot = i;
        if (slot < 0) { reply(fd, 503, "{\"error\":\"too many connections\"}\n", 0), close(fd); continue; }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[slot] = (Conn){.fd = fd, .since = now};
      }
    }
    for (int i = 0; i < MAX_CONNS; i++) {
      Conn *c = &conns[i];
      if (c->fd < 0) continue;
      if (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (c->len == c->cap) {
          size_t cap = c->cap ? c->cap * 2 : 8192, limit = MAX_HEADER + model->max_body + 4096;
          if (cap > limit) cap = limit;
          if (cap > c->cap && buffered + (cap - c->cap) > MAX_BUFFERED) {
            reply(c->fd, 503, "{\"error\":\"busy: too many requests arriving at once; retry\"}\n", 0);
            close_conn(c);
            continue;
          }
          unsigned char *b = cap > c->cap ? realloc(c->buf, cap) : NULL;
          if (!b) { close_conn(c); continue; }
          buffered += cap - c->cap;
          c->buf = b, c->cap = cap;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { close_conn(c); continue; }
        if (r > 0) {
          if (c->len == 0) c->since = now;
          c->len += (size_t)r;
          if (serve(c)) { close_conn(c); continue; }
        }
      }
      if (c->len > 0 && now - c->since > REQUEST_SECONDS) reply(c->fd, 408, "{\"error\":\"the request did not arrive whole within 10 s\"}\n", 0), close_conn(c);
      else if (c->len == 0 && now - c->since > IDLE_SECONDS) close_conn(c);
    }
  }
  return 0;
}
