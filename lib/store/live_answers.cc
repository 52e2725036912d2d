#include "lib/store/live_answers.h"

#include "lib/store/tenant_key.h"

namespace ragstream::store {

LiveAnswers::LiveAnswers(const Env& env)
    : streaming_(env.Dbi("streaming")), cancels_(env.Dbi("cancel_requests")) {}

Status LiveAnswers::Add(Txn& txn, std::string_view tenant, std::string_view message_id,
                        std::string_view message_key) {
  return txn.Put(streaming_, TenantKey(tenant, message_id), message_key);
}

Status LiveAnswers::Remove(Txn& txn, std::string_view id_key) {
  if (Status s = txn.Del(streaming_, id_key); !s.ok()) return s;
  return txn.Del(cancels_, id_key);
}

Result<size_t> LiveAnswers::Count(const Txn& txn, std::string_view tenant) const {
  auto cur = Cursor::Open(txn, streaming_);
  if (!cur.ok()) return cur.status();
  const std::string prefix = TenantPrefix(tenant);
  size_t n = 0;
  for (bool have = cur->SeekAtLeast(prefix); have && HasPrefix(cur->key(), prefix);
       have = cur->Next()) {
    ++n;
  }
  return n;
}

Status LiveAnswers::AskToStop(Txn& txn, std::string_view tenant, std::string_view message_id) {
  return txn.Put(cancels_, TenantKey(tenant, message_id), "");
}

Result<bool> LiveAnswers::StopAsked(const Txn& txn, std::string_view tenant,
                                    std::string_view message_id) const {
  auto flag = txn.Get(cancels_, TenantKey(tenant, message_id));
  if (!flag.ok()) return flag.status();
  return flag->has_value();
}

Result<std::vector<std::pair<std::string, std::string>>> LiveAnswers::All(const Txn& txn) const {
  auto cur = Cursor::Open(txn, streaming_);
  if (!cur.ok()) return cur.status();
  std::vector<std::pair<std::string, std::string>> out;
  for (bool have = cur->First(); have; have = cur->Next()) {
    out.emplace_back(std::string(cur->key()), std::string(cur->value()));
  }
  return out;
}

Result<std::optional<std::string>> LiveAnswers::KeyOf(const Txn& txn,
                                                      std::string_view id_key) const {
  auto key = txn.Get(streaming_, id_key);
  if (!key.ok()) return key.status();
  if (!key->has_value()) return std::optional<std::string>();
  return std::optional<std::string>(std::string(**key));
}

}  // namespace ragstream::store
