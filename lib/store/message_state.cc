#include "lib/store/message_state.h"

#include <cstring>

#include "lib/store/tenant_key.h"

namespace ragstream::store {
namespace {

void PutU32(std::string& out, uint32_t x) {
  out.append(reinterpret_cast<const char*>(&x), 4);
}
void PutI64(std::string& out, int64_t x) {
  out.append(reinterpret_cast<const char*>(&x), 8);
}
bool GetU32(std::string_view& in, uint32_t& x) {
  if (in.size() < 4) return false;
  std::memcpy(&x, in.data(), 4);
  in.remove_prefix(4);
  return true;
}
bool GetI64(std::string_view& in, int64_t& x) {
  if (in.size() < 8) return false;
  std::memcpy(&x, in.data(), 8);
  in.remove_prefix(8);
  return true;
}

std::string DeltaKey(std::string_view message_key, uint32_t n) {
  return std::string(message_key) + EncodeBigEndian64(n).substr(4);
}

Status DeleteRange(Txn& txn, MDB_dbi dbi, std::string_view prefix) {
  auto cur = Cursor::Open(txn, dbi);
  if (!cur.ok()) return cur.status();
  while (cur->SeekAtLeast(prefix) && HasPrefix(cur->key(), prefix)) {
    if (Status s = cur->DelCurrent(); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

MessageStates::MessageStates(const Env& env)
    : state_(env.Dbi("msg_state")), deltas_(env.Dbi("msg_deltas")) {}

Result<std::optional<StreamState>> MessageStates::Get(const Txn& txn,
                                                      std::string_view message_key) const {
  auto raw = txn.Get(state_, message_key);
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return std::optional<StreamState>();
  std::string_view in = **raw;
  StreamState s;
  uint32_t status_len = 0;
  if (!GetI64(in, s.updated_at) || !GetU32(in, s.length) || !GetU32(in, s.tokens) ||
      !GetU32(in, s.deltas) || !GetU32(in, status_len) || in.size() != status_len) {
    return Status::Internal("corrupt stream state record");
  }
  s.status.assign(in);
  return std::optional<StreamState>(std::move(s));
}

Status MessageStates::Put(Txn& txn, std::string_view message_key, const StreamState& s) {
  std::string out;
  PutI64(out, s.updated_at);
  PutU32(out, s.length);
  PutU32(out, s.tokens);
  PutU32(out, s.deltas);
  PutU32(out, static_cast<uint32_t>(s.status.size()));
  out.append(s.status);
  return txn.Put(state_, message_key, out);
}

Status MessageStates::Append(Txn& txn, std::string_view message_key, StreamState& state,
                             std::string_view content, const std::vector<uint32_t>& token_ends) {
  if (content.size() < state.length || token_ends.size() < state.tokens) return Status::Ok();
  if (content.size() == state.length && token_ends.size() == state.tokens) return Status::Ok();
  std::string out;
  PutU32(out, static_cast<uint32_t>(token_ends.size() - state.tokens));
  for (size_t i = state.tokens; i < token_ends.size(); ++i) PutU32(out, token_ends[i]);
  out.append(content.substr(state.length));
  if (Status s = txn.Put(deltas_, DeltaKey(message_key, state.deltas), out); !s.ok()) return s;
  ++state.deltas;
  state.length = static_cast<uint32_t>(content.size());
  state.tokens = static_cast<uint32_t>(token_ends.size());
  return Status::Ok();
}

Status MessageStates::Read(const Txn& txn, std::string_view message_key, std::string& content,
                           std::vector<uint32_t>& token_ends) const {
  content.clear();
  token_ends.clear();
  auto cur = Cursor::Open(txn, deltas_);
  if (!cur.ok()) return cur.status();
  const std::string prefix(message_key);
  for (bool have = cur->SeekAtLeast(prefix);
       have && HasPrefix(cur->key(), prefix) && cur->key().size() == prefix.size() + 4;
       have = cur->Next()) {
    std::string_view in = cur->value();
    uint32_t n = 0;
    if (!GetU32(in, n)) return Status::Internal("corrupt delta record");
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t end = 0;
      if (!GetU32(in, end)) return Status::Internal("corrupt delta record");
      token_ends.push_back(end);
    }
    content.append(in);
  }
  return Status::Ok();
}

Status MessageStates::Erase(Txn& txn, std::string_view message_key) {
  if (Status s = txn.Del(state_, message_key); !s.ok()) return s;
  // Message keys have one length, so the keys under one are its deltas alone.
  return DeleteRange(txn, deltas_, message_key);
}

Status MessageStates::ErasePrefix(Txn& txn, std::string_view prefix) {
  if (Status s = DeleteRange(txn, state_, prefix); !s.ok()) return s;
  return DeleteRange(txn, deltas_, prefix);
}

}  // namespace ragstream::store
