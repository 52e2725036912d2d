#include "lib/store/idempotency.h"

#include <vector>

#include "lib/core/json.h"
#include "lib/core/sha256.h"
#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

constexpr char kSeparator = '\x1f';

std::string Key(std::string_view tenant, std::string_view key) {
  std::string rest(1, kSeparator);
  rest.append(key);
  return TenantKey(tenant, rest);
}

std::string Encode(const IdempotencyRecord& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("m");
  WriteString(w, r.message_id);
  w.Key("c");
  WriteString(w, r.conversation_id);
  w.Key("f");
  WriteString(w, r.fingerprint);
  w.Key("t");
  w.Int64(r.created_at);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// False for anything else, including the earlier layout's bare message id.
bool Decode(std::string_view raw, IdempotencyRecord& r) {
  if (raw.empty() || raw.front() != '{') return false;
  rapidjson::Document d;
  d.Parse(raw.data(), raw.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  auto str = [&d](const char* k, std::string& out) {
    auto it = d.FindMember(k);
    if (it == d.MemberEnd() || !it->value.IsString()) return false;
    out = AsView(it->value);
    return true;
  };
  auto t = d.FindMember("t");
  if (t == d.MemberEnd() || !t->value.IsInt64()) return false;
  r.created_at = t->value.GetInt64();
  return str("m", r.message_id) && str("c", r.conversation_id) && str("f", r.fingerprint);
}

}  // namespace

Result<std::optional<IdempotencyRecord>> IdempotencyKeys::Find(const Txn& txn,
                                                               std::string_view tenant,
                                                               std::string_view key, int64_t now_ms,
                                                               int64_t ttl_ms) const {
  auto raw = txn.Get(dbi_, Key(tenant, key));
  if (!raw.ok()) return raw.status();
  IdempotencyRecord r;
  if (!raw->has_value() || !Decode(**raw, r) || now_ms - r.created_at > ttl_ms) {
    return std::optional<IdempotencyRecord>();
  }
  return std::optional<IdempotencyRecord>(std::move(r));
}

Status IdempotencyKeys::Put(Txn& txn, std::string_view tenant, std::string_view key,
                            const IdempotencyRecord& record) {
  return txn.Put(dbi_, Key(tenant, key), Encode(record));
}

Status IdempotencyKeys::DeleteForConversation(Txn& txn, std::string_view tenant,
                                              std::string_view conversation_id) {
  std::vector<std::string> doomed;
  {
    auto cur = Cursor::Open(txn, dbi_);
    if (!cur.ok()) return cur.status();
    const std::string prefix = TenantPrefix(tenant);
    for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
         have = cur->Next()) {
      IdempotencyRecord r;
      if (Decode(cur->value(), r) && r.conversation_id == conversation_id) {
        doomed.emplace_back(cur->key());
      }
    }
  }
  for (const auto& k : doomed) {
    if (Status s = txn.Del(dbi_, k); !s.ok()) return s;
  }
  return Status::Ok();
}

Result<size_t> IdempotencyKeys::Expire(Txn& txn, int64_t now_ms, int64_t ttl_ms, size_t max_rows) {
  std::vector<std::string> doomed;
  {
    auto cur = Cursor::Open(txn, dbi_);
    if (!cur.ok()) return cur.status();
    for (bool have = cur->First(); have && doomed.size() < max_rows; have = cur->Next()) {
      IdempotencyRecord r;
      if (!Decode(cur->value(), r) || now_ms - r.created_at > ttl_ms) {
        doomed.emplace_back(cur->key());
      }
    }
  }
  for (const auto& k : doomed) {
    if (Status s = txn.Del(dbi_, k); !s.ok()) return s;
  }
  return doomed.size();
}

std::string RequestFingerprint(std::initializer_list<std::string_view> parts) {
  std::string input;
  for (std::string_view p : parts) {
    input += std::to_string(p.size());
    input.push_back(':');
    input.append(p);
  }
  return Sha256Hex(input);
}

}  // namespace ragstream::store
