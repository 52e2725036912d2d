#include "lib/cluster/change_codec.h"

#include <cstring>

namespace ragstream::cluster {
namespace {

constexpr std::string_view kRecordMagic = "RSC1";
constexpr std::string_view kPartMagic = "RSP1";
constexpr size_t kPartHeader = 4 + 8 + 4 + 4;

void PutU32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}

void PutU64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}

uint64_t GetLE(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  }
  return v;
}

Status Corrupt(std::string what) {
  return Status::Internal("the replication log holds a damaged record: " + what);
}

void AppendChange(std::string& out, store::Change::Op op, std::string_view db, std::string_view key,
                  std::string_view value) {
  out.push_back(static_cast<char>(op));
  out.push_back(static_cast<char>(db.size()));
  out.append(db);
  PutU32(out, static_cast<uint32_t>(key.size()));
  out.append(key);
  PutU32(out, static_cast<uint32_t>(value.size()));
  out.append(value);
}

}  // namespace

std::string EncodeChanges(const store::Env& env, const std::vector<store::Change>& changes) {
  size_t size = kRecordMagic.size();
  for (const auto& c : changes) size += 1 + 1 + 16 + 4 + c.key.size() + 4 + c.value.size();
  std::string out;
  out.reserve(size);
  out.append(kRecordMagic);
  for (const auto& c : changes) AppendChange(out, c.op, env.DbName(c.dbi), c.key, c.value);
  return out;
}

std::string EncodeNamedChanges(const std::vector<DecodedChange>& changes) {
  std::string out(kRecordMagic);
  for (const auto& c : changes) AppendChange(out, c.op, c.db, c.key, c.value);
  return out;
}

Result<std::vector<DecodedChange>> DecodeChanges(std::string_view record) {
  if (record.substr(0, kRecordMagic.size()) != kRecordMagic) return Corrupt("no record header");
  std::vector<DecodedChange> out;
  size_t at = kRecordMagic.size();
  auto take = [&](size_t n, std::string_view& into) {
    if (record.size() - at < n) return false;
    into = record.substr(at, n);
    at += n;
    return true;
  };
  while (at < record.size()) {
    if (record.size() - at < 2) return Corrupt("a change is cut short");
    DecodedChange c;
    const auto op = static_cast<uint8_t>(record[at]);
    if (op < 1 || op > 3) return Corrupt("unknown change " + std::to_string(op));
    c.op = static_cast<store::Change::Op>(op);
    const size_t name_len = static_cast<uint8_t>(record[at + 1]);
    at += 2;
    if (!take(name_len, c.db) || name_len == 0) return Corrupt("a database name is cut short");
    for (std::string_view* field : {&c.key, &c.value}) {
      if (record.size() - at < 4) return Corrupt("a length is cut short");
      const size_t n = GetLE(record, at, 4);
      at += 4;
      if (!take(n, *field)) return Corrupt("a key or value is cut short");
    }
    out.push_back(c);
  }
  return out;
}

Status ApplyChanges(store::Txn& txn, const store::Env& env,
                    const std::vector<DecodedChange>& changes) {
  for (const auto& c : changes) {
    const auto dbi = env.FindDbi(c.db);
    if (!dbi) {
      return Status::Internal("the replication log changes database '" + std::string(c.db) +
                              "', which this version does not have: upgrade this host");
    }
    Status s = Status::Ok();
    switch (c.op) {
      case store::Change::Op::kPut:
        s = txn.Put(*dbi, c.key, c.value);
        break;
      case store::Change::Op::kDel:
        s = txn.Del(*dbi, c.key);
        break;
      case store::Change::Op::kClear:
        s = txn.Clear(*dbi);
        break;
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

std::vector<std::string> FrameParts(uint64_t txn_id, std::string_view record,
                                    size_t max_part_bytes) {
  const size_t room = max_part_bytes > kPartHeader + 1 ? max_part_bytes - kPartHeader : 1;
  const uint32_t count =
      static_cast<uint32_t>(std::max<size_t>(1, (record.size() + room - 1) / room));
  std::vector<std::string> parts;
  parts.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    std::string p;
    const std::string_view piece = record.substr(std::min(record.size(), i * room), room);
    p.reserve(kPartHeader + piece.size());
    p.append(kPartMagic);
    PutU64(p, txn_id);
    PutU32(p, i);
    PutU32(p, count);
    p.append(piece);
    parts.push_back(std::move(p));
  }
  return parts;
}

Result<Part> ParsePart(std::string_view message) {
  if (message.size() < kPartHeader || message.substr(0, kPartMagic.size()) != kPartMagic) {
    return Corrupt("a message is not a part of a record");
  }
  Part p;
  p.txn_id = GetLE(message, 4, 8);
  p.index = static_cast<uint32_t>(GetLE(message, 12, 4));
  p.count = static_cast<uint32_t>(GetLE(message, 16, 4));
  if (p.count == 0 || p.index >= p.count) return Corrupt("a part's number is out of range");
  p.data = message.substr(kPartHeader);
  return p;
}

std::optional<std::string> Reassembler::Feed(const Part& part) {
  const bool continues = expect_ > 0 && part.txn_id == txn_id_ && part.index == count_ - expect_ &&
                         part.count == count_;
  if (!continues) {
    if (expect_ > 0) ++dropped_;
    record_.clear();
    expect_ = 0;
    if (part.index != 0) {  // the tail of a transaction whose start was dropped
      ++dropped_;
      return std::nullopt;
    }
    txn_id_ = part.txn_id;
    count_ = expect_ = part.count;
  }
  record_.append(part.data);
  if (--expect_ > 0) return std::nullopt;
  std::string done = std::move(record_);
  record_.clear();
  return done;
}

}  // namespace ragstream::cluster
