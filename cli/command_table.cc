// The table of commands: names, usage, help text and options. Parsing is in args.cc.
#include "cli/args.h"

namespace ragstream::cli {

const std::vector<OptionSpec>& GlobalOptions() {
  static const std::vector<OptionSpec> kGlobal = {
      {"--url", "URL",
       "server base URL (default: $RAGSTREAM_URL, else http://127.0.0.1:${RAGSTREAM_PORT:-8080})"},
      {"--api-key", "KEY", "sent as a bearer token (default: $RAGSTREAM_API_KEY); never printed"},
      {"--help", "", "show this help and exit"},
  };
  return kGlobal;
}

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"ingest",
       "PATH...",
       1,
       kUnlimited,
       "add .txt, .md and .markdown files (folders are walked recursively)",
       "Files are sent in batches to POST /api/documents/batch (NDJSON; a batch closes at\n"
       "64 files or 8 MiB of text, a larger file goes alone); a server without that route,\n"
       "or a batch over its limit, gets each file POSTed to /api/documents as text/plain\n"
       "(.txt) or text/markdown (.md, .markdown). Title: a Markdown file whose first\n"
       "non-empty line is a '# heading' is left to the server, which takes that line; any\n"
       "other file is titled with its file name without the extension. Folders are walked\n"
       "recursively, skipping hidden entries (names starting with '.') and files of other\n"
       "types (counted as 'ignored'); a file named on the command line must have one of the\n"
       "three extensions. Files that cannot be read or are not UTF-8 text (NUL bytes,\n"
       "invalid UTF-8) are skipped and counted as failed. Content already stored (same\n"
       "bytes) is reported as unchanged.\n"
       "Progress goes to stderr (a bar on a terminal, one line per file otherwise); the\n"
       "summary 'stored N, unchanged M (already stored), failed K, X bytes' goes to stdout\n"
       "(X: the size of the newly stored files). Exit 1 if any file failed.",
       {}},
      {"ask",
       "\"question\"",
       1,
       1,
       "ask a question; the answer streams to stdout as it is written",
       "Streams POST /api/chat/message/stream. The answer goes to stdout as it arrives; the\n"
       "numbered sources (title and a one-line excerpt) and the conversation id follow on\n"
       "stderr. With --json, stdout gets every event of the stream as one JSON object per\n"
       "line instead. Exit 1 if the request fails, the stream ends with an error, or it ends\n"
       "without its done event (the answer was cut off).",
       {{"--conversation", "ID", "continue conversation ID (default: start a new one)"},
        {"--top-k", "N", "number of passages to retrieve, 1..20 (default: the server's)"},
        {"--mode", "MODE", "retrieval mode: hybrid, vector or lexical (default: hybrid)"},
        {"--json", "", "print the stream's events as JSON lines on stdout"}}},
      {"conversations list",
       "",
       0,
       0,
       "list conversations, newest first",
       "Columns: id, last update (local time), number of messages, title.",
       {{"--limit", "N", "show at most N conversations (default: 20)"},
        {"--all", "", "show every conversation (follows next_cursor page after page)"}}},
      {"conversations show",
       "ID",
       1,
       1,
       "show a conversation: its messages with roles, statuses and sources",
       "",
       {}},
      {"conversations export",
       "ID",
       1,
       1,
       "print a conversation as JSON or Markdown",
       "json: the API's conversation object (GET /api/conversations/ID), indented.\n"
       "markdown: a '# title', then each message as **User:** / **Assistant:** with the\n"
       "sources of an answer as a numbered footnote list matching its [n] markers.",
       {{"--format", "FORMAT", "json or markdown (default: markdown)"}}},
      {"documents list",
       "",
       0,
       0,
       "list the stored documents",
       "Columns: id, creation time (local time), chunks, bytes, title.",
       {}},
      {"documents delete",
       "ID...",
       1,
       kUnlimited,
       "delete documents (with their chunks, vectors and postings)",
       "",
       {}},
      {"backup",
       "DIR",
       1,
       1,
       "copy the live LMDB store into DIR (runs on the host that has the store)",
       "The store cannot be copied over HTTP: backup runs on the host that has the data\n"
       "directory, not against --url. It runs 'mdb_copy -c' (a consistent, compacted\n"
       "snapshot; the workers can keep serving) from the data directory into DIR, which is\n"
       "created and must be empty, then checks the copy with 'mdb_stat' and prints its\n"
       "size. Needs lmdb-utils (mdb_copy, mdb_stat).",
       {{"--data-dir", "DIR",
         "the store's directory (default: $RAGSTREAM_DATA_DIR, else ./ragstream-data)"}}},
      {"migrate",
       "",
       0,
       0,
       "convert a store of the previous index layout in place (stop the workers first)",
       "Workers of this version refuse a store made by the previous layout (one key per\n"
       "posting, chunks holding copies of their text) and name this command. It rewrites\n"
       "every document's chunks, postings and vectors with dense ids, in transactions of at\n"
       "most 64 documents, keeping document ids, titles and vectors (nothing is embedded\n"
       "again); conversations are not touched. Killed, it resumes where it stopped when run\n"
       "again. A store already current is left alone. Back the store up first (backup), and\n"
       "check it afterwards with 'mdb_stat -a'.",
       {{"--data-dir", "DIR",
         "the store's directory (default: $RAGSTREAM_DATA_DIR, else ./ragstream-data)"}}},
      {"stats",
       "",
       0,
       0,
       "show the server's health and metrics",
       "Reads GET /api/health and GET /metrics: status, version, documents, map use,\n"
       "chat model, embedder, workers, active streams, request totals, tokens relayed.",
       {}},
      {"cluster status",
       "",
       0,
       0,
       "show each shard's leader, log, hosts' lag and tenants (cluster mode)",
       "Reads the cluster file (the one scripts/render_cluster_nginx.sh renders nginx's\n"
       "routing from) and asks the NATS servers, not the HTTP API: for each shard, the host\n"
       "holding its lease (the primary), its log's last sequence and its copies on the NATS\n"
       "servers, each host's applied sequence and lag as the hosts report them (a host that\n"
       "stops reporting drops out after a lease period), and the tenants the file routes to\n"
       "it. Exit 1 if a shard's log cannot be reached.",
       {{"--cluster", "FILE", "the cluster file (required)"},
        {"--nats", "URL",
         "the NATS servers, comma-separated (default: $RAGSTREAM_NATS_URL, else "
         "nats://127.0.0.1:4222)"}}},
      {"cluster leaders",
       "",
       0,
       0,
       "print each shard's lease holder, one 'SHARD NODE' line each (for scripts)",
       "Reads the cluster file and asks the NATS servers who holds each shard's lease, as\n"
       "'cluster status' does, in a form for scripts: one line per shard, 'SHARD NODE', NODE\n"
       "being the holder's RAGSTREAM_NODE, or '-' when the lease has lapsed.\n"
       "scripts/cluster_agent.sh renders nginx's routing from it. Exit 1 (and no line for\n"
       "it) if a shard's log cannot be reached. With --routes, also a 'route TENANT SHARD'\n"
       "line for each tenant moved between shards ('cluster move'): where it is now.",
       {{"--cluster", "FILE", "the cluster file (required)"},
        {"--routes", "", "also print the moved tenants' routes"},
        {"--nats", "URL",
         "the NATS servers, comma-separated (default: $RAGSTREAM_NATS_URL, else "
         "nats://127.0.0.1:4222)"}}},
      {"cluster move",
       "TENANT",
       1,
       1,
       "move a tenant to another shard, under load (cluster mode)",
       "Run on a host of the tenant's shard, next to its store. Copies the tenant's records\n"
       "from one read snapshot of the store into a NATS stream; the target shard's primary\n"
       "applies them, then follows the source's log for the tenant's changes made meanwhile.\n"
       "When it is close to the end, the tenant's writes on the source stop (503\n"
       "tenant_moving: the only write pause), the target catches up, the cluster file routes\n"
       "the tenant to the target (render nginx, or let scripts/cluster_agent.sh), and the\n"
       "tenant's records are deleted from the source through its log. Prints the bytes moved,\n"
       "the rate and the pause. Exit 1 if a step fails. Run again, a move that got as far as\n"
       "the routing finishes (the deletion at the source); one that did not is refused until\n"
       "called off with --abort, which lifts the pause at the source (the tenant stays there)\n"
       "and has the target delete its copy.",
       {{"--to", "SHARD", "the shard to move it to (required)"},
        {"--cluster", "FILE", "the cluster file; its tenant line is rewritten (required)"},
        {"--data-dir", "DIR",
         "the source's store (default: $RAGSTREAM_DATA_DIR, else ./ragstream-data)"},
        {"--nats", "URL",
         "the NATS servers, comma-separated (default: $RAGSTREAM_NATS_URL, else "
         "nats://127.0.0.1:4222)"},
        {"--timeout", "S", "seconds to wait for each of the target's steps (default: 600)"},
        {"--abort", "", "call off a move that stopped before the routing changed"}}},
  };
  return kCommands;
}

}  // namespace ragstream::cli
