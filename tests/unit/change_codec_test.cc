// The replication log's records (lib/cluster/change_codec.h) and the capture of a write
// transaction's changes (store::Txn in cluster mode): a store whose changes are replayed on
// another ends up with the same databases, byte for byte; parts are put together again, and
// an unfinished record is dropped; a refused commit leaves nothing; a standby's store takes
// only applied writes.
#include "lib/cluster/change_codec.h"

#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

#include "lib/cluster/tenant_keys.h"
#include "lib/cluster/tenant_mover.h"
#include "lib/core/sha256.h"
#include "lib/store/document_store.h"
#include "lib/store/lmdb.h"
#include "tests/unit/temp_store.h"

namespace ragstream::cluster {
namespace {

using store::Change;
using store::Cursor;
using store::Env;
using store::Txn;

constexpr uint32_t kDim = 4;

std::unique_ptr<Env> OpenEnv(const std::string& path) {
  auto env = testing::OpenDocumentEnv(path, 2);
  BOOST_REQUIRE_MESSAGE(env.ok(), env.status().ToString());
  return std::move(env).value();
}

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  size_t from = 0;
  while (from < text.size()) {
    size_t end = text.find_first_of(" \n", from);
    if (end == std::string_view::npos) end = text.size();
    if (end > from) words.emplace_back(text.substr(from, end - from));
    from = end + 1;
  }
  return words;
}

// The store analyses a document again when it deletes it: the same words as Doc's terms.
std::vector<store::AnalyzedChunk> WordAnalyzer(std::string_view, std::string_view,
                                               const std::vector<std::string_view>& texts) {
  std::vector<store::AnalyzedChunk> out;
  for (std::string_view t : texts) {
    auto words = Words(t);
    const auto n = static_cast<uint32_t>(words.size());
    out.push_back({std::move(words), n});
  }
  return out;
}

cluster::Part P(const std::string& message) {
  auto part = ParsePart(message);
  BOOST_REQUIRE_MESSAGE(part.ok(), part.status().ToString());
  return *part;
}

store::NewDocument Doc(const std::string& id, const std::vector<std::string>& chunks) {
  store::NewDocument d;
  for (size_t i = 0; i < chunks.size(); ++i) {
    store::NewChunk c;
    c.index = static_cast<uint32_t>(i);
    if (!d.text.empty()) d.text += "\n\n";
    c.start_char = c.start_byte = d.text.size();
    d.text += chunks[i];
    c.end_char = c.end_byte = d.text.size();
    c.terms = Words(chunks[i]);
    c.length = static_cast<uint32_t>(c.terms.size());
    d.chunks.push_back(c);
    for (uint32_t k = 0; k < kDim; ++k) d.vectors.push_back(k == i % kDim ? 1.0f : 0.0f);
  }
  d.dimension = kDim;
  d.record.id = id;
  d.record.title = id;
  d.record.content_hash = Sha256Hex(d.text);
  d.record.bytes = d.record.chars = d.text.size();
  d.record.chunk_count = static_cast<uint32_t>(chunks.size());
  return d;
}

// Every key and value of every database the store opened.
std::map<std::string, std::map<std::string, std::string>> Dump(const Env& env) {
  std::map<std::string, std::map<std::string, std::string>> out;
  auto txn = Txn::BeginRead(env);
  BOOST_REQUIRE(txn.ok());
  for (const auto& name : store::DocumentStore::Databases(2)) {
    auto cur = Cursor::Open(*txn, env.Dbi(name));
    BOOST_REQUIRE(cur.ok());
    auto& db = out[name];
    for (bool more = cur->First(); more; more = cur->Next()) {
      db[std::string(cur->key())] = std::string(cur->value());
    }
  }
  return out;
}

// Applies each record to `env` in its own transaction, as a standby does.
void ApplyAll(const Env& env, const std::vector<std::string>& records) {
  for (const auto& r : records) {
    auto changes = DecodeChanges(r);
    BOOST_REQUIRE_MESSAGE(changes.ok(), changes.status().ToString());
    auto txn = Txn::BeginApply(env);
    BOOST_REQUIRE(txn.ok());
    Status s = ApplyChanges(*txn, env, *changes);
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
    BOOST_REQUIRE(txn->Commit().ok());
  }
}

BOOST_AUTO_TEST_SUITE(change_codec_test)

BOOST_AUTO_TEST_CASE(a_replayed_log_gives_the_same_store) {
  testing::TempDir a_dir, b_dir;
  auto a = OpenEnv(a_dir.path());
  auto b = OpenEnv(b_dir.path());
  // The primary's hook: each transaction's record, cut into small parts and put together
  // again, as the log would carry it.
  std::vector<std::string> records;
  uint64_t txn_id = 0, multi_part = 0;
  a->set_commit_hook([&](Txn&, const std::vector<Change>& changes) {
    const auto parts = FrameParts(++txn_id, EncodeChanges(*a, changes), 300);
    multi_part += parts.size() > 1;
    Reassembler r;
    std::optional<std::string> done;
    for (const auto& p : parts) {
      BOOST_TEST(!done.has_value());
      done = r.Feed(P(p));
    }
    BOOST_REQUIRE(done.has_value());
    records.push_back(*done);
    return Status::Ok();
  });
  store::DocumentStore docs(*a, 2, store::VectorFormat::kFloat, WordAnalyzer);
  for (int i = 0; i < 6; ++i) {
    auto added = docs.Add("acme", Doc("doc_" + std::to_string(i),
                                      {"alpha " + std::to_string(i), "beta gamma", "delta"}));
    BOOST_REQUIRE_MESSAGE(added.ok(), added.status().ToString());
  }
  BOOST_REQUIRE(docs.Delete("acme", "doc_2").ok());
  {
    // The other ways of writing: a cursor's delete, and clearing a database.
    auto txn = Txn::BeginWrite(*a);
    BOOST_REQUIRE(txn.ok());
    BOOST_REQUIRE(txn->Put(a->Dbi("index_meta"), "zz_probe", "1").ok());
    BOOST_REQUIRE(txn->Put(a->Dbi("index_meta"), "zz_probe2", "2").ok());
    auto cur = Cursor::Open(*txn, a->Dbi("index_meta"));
    BOOST_REQUIRE(cur.ok() && cur->SeekAtLeast("zz_probe"));
    BOOST_REQUIRE(cur->DelCurrent().ok());
    BOOST_REQUIRE(txn->Clear(a->Dbi("lex_norms")).ok());
    BOOST_REQUIRE(txn->Commit().ok());
  }
  BOOST_TEST(records.size() >= 8u);
  BOOST_TEST(multi_part > 0u);  // some records took several parts

  ApplyAll(*b, records);
  const auto want = Dump(*a), got = Dump(*b);
  size_t keys = 0;
  for (const auto& [name, db] : want) {
    BOOST_TEST_CONTEXT(name) {
      BOOST_TEST((got.at(name) == db));
    }
    keys += db.size();
  }
  BOOST_TEST(keys > 20u);
  BOOST_TEST(want.at("index_meta").count("zz_probe2") == 1u);
  BOOST_TEST(want.at("index_meta").count("zz_probe") == 0u);
  BOOST_TEST(want.at("lex_norms").empty());
  BOOST_TEST(!want.at("lex_blocks").empty());
  // And the replayed store reads like the first.
  store::DocumentStore replayed(*b, 2, store::VectorFormat::kFloat, WordAnalyzer);
  BOOST_TEST(replayed.Get("acme", "doc_3").ok());
  BOOST_TEST(!replayed.Get("acme", "doc_2").ok());
}

BOOST_AUTO_TEST_CASE(a_commit_the_log_refuses_leaves_nothing) {
  testing::TempDir dir;
  auto env = OpenEnv(dir.path());
  env->set_commit_hook([](Txn&, const std::vector<Change>&) {
    return Status::Unavailable("log_unavailable", "the log is down");
  });
  auto txn = Txn::BeginWrite(*env);
  BOOST_REQUIRE(txn.ok());
  BOOST_REQUIRE(txn->Put(env->Dbi("index_meta"), "k", "v").ok());
  Status s = txn->Commit();
  BOOST_TEST(s.code() == "log_unavailable");
  auto read = Txn::BeginRead(*env);
  BOOST_REQUIRE(read.ok());
  BOOST_TEST(!read->Get(env->Dbi("index_meta"), "k")->has_value());
}

BOOST_AUTO_TEST_CASE(a_standby_takes_only_the_logs_writes) {
  testing::TempDir dir;
  auto env = OpenEnv(dir.path());
  env->RefuseWrites(Status::Unavailable("standby", "a standby"));
  auto refused = Txn::BeginWrite(*env);
  BOOST_TEST((!refused.ok() && refused.status().code() == "standby"));
  auto applied = Txn::BeginApply(*env);
  BOOST_REQUIRE(applied.ok());
  BOOST_REQUIRE(applied->Put(env->Dbi("index_meta"), "k", "v").ok());
  BOOST_REQUIRE(applied->Commit().ok());
  env->RefuseWrites(Status::Ok());
  BOOST_TEST(Txn::BeginWrite(*env).ok());
}

BOOST_AUTO_TEST_CASE(unfinished_records_are_dropped_and_damage_is_refused) {
  const std::string record(1000, 'x');
  auto first = FrameParts(1, record, 400), second = FrameParts(2, "RSC1", 400);
  BOOST_TEST(first.size() == 3u);
  BOOST_TEST(second.size() == 1u);
  Reassembler r;
  // Transaction 1 stops after two parts (its writer failed); transaction 2 follows.
  BOOST_TEST(!r.Feed(P(first[0])).has_value());
  BOOST_TEST(!r.Feed(P(first[1])).has_value());
  auto done = r.Feed(P(second[0]));
  BOOST_TEST((done.has_value() && *done == "RSC1"));
  BOOST_TEST(r.dropped() == 1u);
  // A tail without its start is dropped too.
  BOOST_TEST(!r.Feed(P(first[2])).has_value());
  BOOST_TEST(r.dropped() == 2u);
  // Whole again when every part comes.
  Reassembler whole;
  std::optional<std::string> got;
  for (const auto& p : first) got = whole.Feed(P(p));
  BOOST_TEST((got.has_value() && *got == record));

  BOOST_TEST(!ParsePart("RSP1").ok());
  BOOST_TEST(!ParsePart("nope" + first[0].substr(4)).ok());
  BOOST_TEST(!DecodeChanges("RSC2").ok());
  testing::TempDir dir;
  auto env = OpenEnv(dir.path());
  std::vector<Change> changes = {{Change::Op::kPut, env->Dbi("index_meta"), "key", "value"}};
  const std::string good = EncodeChanges(*env, changes);
  BOOST_TEST(DecodeChanges(good).ok());
  for (size_t cut = 5; cut < good.size(); ++cut) {
    BOOST_TEST_CONTEXT(cut) {
      BOOST_TEST(!DecodeChanges(good.substr(0, cut)).ok());
    }
  }
  // A database this version does not have: refused, nothing applied.
  const std::vector<DecodedChange> unknown = {{Change::Op::kPut, "no_such_db", "k", "v"}};
  auto txn = Txn::BeginApply(*env);
  BOOST_REQUIRE(txn.ok());
  BOOST_TEST(!ApplyChanges(*txn, *env, unknown).ok());
}

// A tenant move copies exactly the tenant's records: into an empty store they give a store
// that holds that tenant's documents and nothing of anyone else's; deleting them leaves the
// source with the other tenant's alone.
BOOST_AUTO_TEST_CASE(a_tenants_records_move_whole_and_alone) {
  BOOST_TEST(TenantOfKey("documents", "acme/doc_1") == "acme");
  BOOST_TEST(TenantOfKey("index_meta", "doc_count/acme") == "acme");
  BOOST_TEST(TenantOfKey("index_meta", "layout").empty());
  BOOST_TEST(TenantOfKey("index_meta", MovingKey("acme")).empty());  // the move's own mark
  BOOST_TEST(TenantOfKey("index_meta", MoveProgressMetaKey("move_source", "acme")).empty());
  BOOST_TEST(!MovesWithTenant(kIvfDatabase));  // derived: the target builds its own
  BOOST_TEST(TenantOfKey("replication", "applied_seq").empty());
  BOOST_TEST(!IsTenantKey("documents", "acme2/doc_1", "acme"));

  testing::TempDir a_dir, b_dir;
  auto a = OpenEnv(a_dir.path());
  auto b = OpenEnv(b_dir.path());
  store::DocumentStore source(*a, 2, store::VectorFormat::kFloat, WordAnalyzer);
  for (const char* tenant : {"acme", "globex"}) {
    for (int i = 0; i < 4; ++i) {
      auto added = source.Add(tenant, Doc(std::string(tenant) + "_" + std::to_string(i),
                                          {"alpha " + std::to_string(i), "beta gamma"}));
      BOOST_REQUIRE_MESSAGE(added.ok(), added.status().ToString());
    }
  }
  std::vector<std::string> copy, deletion;
  size_t records = 0;
  {
    auto txn = Txn::BeginRead(*a);
    BOOST_REQUIRE(txn.ok());
    std::vector<DecodedChange> puts, dels;
    Status s = ForEachTenantRecord(
        *txn, *a, "acme", [&](std::string_view db, std::string_view key, std::string_view value) {
          puts.push_back({Change::Op::kPut, db, key, value});
          dels.push_back({Change::Op::kDel, db, key, {}});
          return Status::Ok();
        });
    BOOST_REQUIRE(s.ok());
    records = puts.size();
    copy.push_back(EncodeNamedChanges(puts));
    deletion.push_back(EncodeNamedChanges(dels));
  }
  BOOST_TEST(records > 8u);
  ApplyAll(*b, copy);
  store::DocumentStore target(*b, 2, store::VectorFormat::kFloat, WordAnalyzer);
  size_t copied = 0;
  for (const auto& [db, rows] : Dump(*b)) {
    for (const auto& [key, value] : rows) {
      BOOST_TEST(TenantOfKey(db, key) == "acme", db << " " << key);
      BOOST_TEST(Dump(*a)[db][key] == value);
      ++copied;
    }
  }
  BOOST_TEST(copied == records);
  auto listed = target.List("acme");
  BOOST_REQUIRE(listed.ok());
  BOOST_TEST(listed->size() == 4u);
  auto found = target.lexical().Search("acme", {{"gamma", 1.0}}, 10, {});
  BOOST_REQUIRE(found.ok());
  BOOST_TEST(found->hits.size() == 4u);

  ApplyAll(*a, deletion);
  for (const auto& [db, rows] : Dump(*a)) {
    for (const auto& [key, value] : rows)
      BOOST_TEST(TenantOfKey(db, key) != "acme", db << " " << key);
  }
  auto left = source.List("globex");
  BOOST_REQUIRE(left.ok());
  BOOST_TEST(left->size() == 4u);
}

BOOST_AUTO_TEST_CASE(move_fields_round_trip) {
  const MoveFields plan{{"tenant", "team_b.x"}, {"from", "a"}, {"snapshot_seq", "42"}};
  const MoveFields back = ParseMoveFields(FormatMoveFields(plan));
  BOOST_TEST((back == plan));
  BOOST_TEST(MoveNumber(back, "snapshot_seq") == 42u);
  BOOST_TEST(MoveNumber(back, "freeze_seq") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace ragstream::cluster
