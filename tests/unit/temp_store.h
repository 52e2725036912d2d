// A fresh LMDB environment with the conversation store's (or the document store's) databases
// in a temp directory (mkdtemp under /tmp), removed when the fixture goes away.
#pragma once

#include <stdlib.h>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "lib/store/conversation_store.h"
#include "lib/store/document_store.h"
#include "lib/store/lmdb.h"

namespace ragstream::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ragstream_unit_XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline Result<std::unique_ptr<store::Env>> OpenStoreEnv(const std::string& path,
                                                        uint64_t map_size_bytes) {
  store::Env::Options options;
  options.path = path;
  options.map_size_bytes = map_size_bytes;
  options.max_readers = 126;
  options.databases = store::ConversationStore::Databases();
  return store::Env::Open(options);
}

// The same for the document store's databases, with `shards` vector shards.
inline Result<std::unique_ptr<store::Env>> OpenDocumentEnv(const std::string& path, int shards,
                                                           uint64_t map_size_bytes = 64ull << 20) {
  store::Env::Options options;
  options.path = path;
  options.map_size_bytes = map_size_bytes;
  options.max_readers = 126;
  options.databases = store::DocumentStore::Databases(shards);
  return store::Env::Open(options);
}

struct TempStore {
  explicit TempStore(uint64_t map_size_bytes = 64ull << 20) {
    auto opened = OpenStoreEnv(dir.path(), map_size_bytes);
    if (!opened.ok()) throw std::runtime_error("Env::Open: " + opened.status().ToString());
    env = std::move(opened).value();
    store = std::make_unique<store::ConversationStore>(*env);
  }
  ~TempStore() {
    store.reset();
    env.reset();
  }

  TempDir dir;
  std::unique_ptr<store::Env> env;
  std::unique_ptr<store::ConversationStore> store;
};

}  // namespace ragstream::testing
