#include "tracefmt/record.h"

#include <gtest/gtest.h>

#include <vector>

#include "tracefmt/testing/trace_builder.h"

namespace tracefmt {
namespace {

using testing::AppendWord;
using testing::Rec;
using testing::RecNoTsc;

TEST(RecordHeaderTest, SplitsEventExtraWordsAndTscFlag) {
  const uint32_t header = 0xd002800e;  // TSC, 5 extra words, SCHED_SWITCH_INFPREV
  EXPECT_EQ(HeaderEvent(header), 0x0002800eu);
  EXPECT_EQ(HeaderExtraWords(header), 5u);
  EXPECT_TRUE(HeaderHasTsc(header));
  EXPECT_EQ(RecordBytesFromHeader(header), 4u + 8u + 20u);
  EXPECT_EQ(MakeHeader(0x0002800e, 5, true), header);
  // Only the low 28 bits are the event; only 3 bits the count.
  EXPECT_EQ(MakeHeader(0xffffffff, 9, false), 0x1fffffffu);
}

TEST(RecordDecodeTest, ReadsTscAndWordsLittleEndian) {
  std::vector<std::byte> bytes;
  AppendWord(bytes, MakeHeader(0x00028004, 2, true));
  AppendWord(bytes, 0x89abcdef);  // TSC low word first
  AppendWord(bytes, 0x01234567);
  AppendWord(bytes, 7);
  AppendWord(bytes, 3);
  Record rec;
  ASSERT_EQ(DecodeRecord(bytes, rec), 20u);
  EXPECT_EQ(rec.event, 0x00028004u);
  EXPECT_TRUE(rec.has_tsc);
  EXPECT_EQ(rec.tsc, 0x0123456789abcdefull);
  ASSERT_EQ(rec.extra_words, 2);
  EXPECT_EQ(rec.extra[0], 7u);
  EXPECT_EQ(rec.extra[1], 3u);
  EXPECT_EQ(rec.extra[2], 0u) << "words past the count are zero";
}

TEST(RecordDecodeTest, TscNeedOnlyBeFourByteAligned) {
  // Xen's records are 4-byte aligned, so the 64-bit TSC often sits at an address that is not a
  // multiple of 8; the decoder must not assume more (UBSan checks this in the sanitizer build).
  const Record want = Rec(0x00021011, 0xfedcba9876543210ull, {1, 2, 3});
  std::vector<std::byte> bytes;
  AppendWord(bytes, 0);  // shifts the record by 4
  testing::AppendRecord(bytes, want);
  Record rec;
  ASSERT_EQ(DecodeRecord(std::span<const std::byte>(bytes).subspan(4), rec), want.SizeBytes());
  EXPECT_EQ(rec, want);
}

TEST(RecordDecodeTest, RecordWithoutTscHasTscZero) {
  std::vector<std::byte> bytes = testing::EncodeAll({RecNoTsc(0x0001f003, {1, 2})});
  Record rec;
  rec.tsc = 99;
  ASSERT_EQ(DecodeRecord(bytes, rec), 12u);
  EXPECT_FALSE(rec.has_tsc);
  EXPECT_EQ(rec.tsc, 0u);
  EXPECT_EQ(rec.extra[1], 2u);
}

TEST(RecordDecodeTest, EveryTruncationIsReportedNotRead) {
  const std::vector<std::byte> bytes =
      testing::EncodeAll({Rec(0x0002800f, 5, {1, 2, 3, 4, 5, 6, 7})});
  ASSERT_EQ(bytes.size(), kMaxRecordBytes);
  Record rec;
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_EQ(DecodeRecord(std::span<const std::byte>(bytes).first(len), rec), 0u) << len;
  }
  EXPECT_EQ(DecodeRecord(bytes, rec), kMaxRecordBytes);
}

TEST(RecordEncodeTest, RoundTripsEverySize) {
  for (uint8_t words = 0; words <= kMaxExtraWords; ++words) {
    for (bool tsc : {false, true}) {
      Record want;
      want.event = 0x00202000u + words;
      want.has_tsc = tsc;
      want.tsc = tsc ? 0x1122334455667788ull : 0;
      want.extra_words = words;
      for (uint8_t i = 0; i < words; ++i) want.extra[i] = 0xa0000000u + i;
      std::vector<std::byte> buf(kMaxRecordBytes);
      const size_t size = EncodeRecord(want, buf);
      ASSERT_EQ(size, want.SizeBytes());
      Record got;
      ASSERT_EQ(DecodeRecord(std::span<const std::byte>(buf).first(size), got), size);
      EXPECT_EQ(got, want);
      EXPECT_EQ(got.Data().size(), words);
    }
  }
}

TEST(RecordEncodeTest, RefusesTooSmallBufferAndTooManyWords) {
  const Record rec = Rec(0x00028004, 1, {1, 2});
  std::vector<std::byte> small(rec.SizeBytes() - 1);
  EXPECT_EQ(EncodeRecord(rec, small), 0u);
  Record bad = rec;
  bad.extra_words = 8;
  std::vector<std::byte> big(64);
  EXPECT_EQ(EncodeRecord(bad, big), 0u);
}

TEST(RecordCursorTest, WalksRecordsAndStopsAtAPartialOne) {
  std::vector<std::byte> bytes =
      testing::EncodeAll({Rec(1, 10, {1}), RecNoTsc(2), Rec(3, 30, {1, 2, 3})});
  const size_t whole = bytes.size();
  AppendWord(bytes, MakeHeader(4, 3, true));  // claims 24 bytes, 4 present
  RecordCursor cur(bytes);
  Record rec;
  std::vector<uint32_t> events;
  while (cur.Next(rec)) events.push_back(rec.event);
  EXPECT_EQ(events, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_FALSE(cur.AtEnd());
  EXPECT_EQ(cur.offset(), whole);
  EXPECT_EQ(cur.remaining(), 4u);
}

TEST(RecordCursorTest, InPlaceWalkGivesTheSameFieldsAsTheDecodedCopy) {
  const std::vector<Record> recs = {Rec(1, 10, {1}), RecNoTsc(2, {7, 8}), Rec(3, 30, {}),
                                    RecNoTsc(6), Rec(4, 40, {1, 2, 3, 4, 5, 6, 7})};
  std::vector<std::byte> bytes;
  for (const Record& r : recs) {
    const size_t at = bytes.size();
    bytes.resize(at + r.SizeBytes());
    EncodeRecord(r, std::span<std::byte>(bytes).subspan(at));
  }
  const size_t whole = bytes.size();
  AppendWord(bytes, MakeHeader(5, 7, true));  // claims 40 bytes
  AppendWord(bytes, 0);                       // 8 present
  RecordCursor cur(bytes);
  RecordRef ref;
  size_t i = 0;
  while (cur.Next(ref)) {
    ASSERT_LT(i, recs.size());
    EXPECT_EQ(ref.Decode(), recs[i]);
    EXPECT_EQ(ref.SizeBytes(), recs[i].SizeBytes());
    if (ref.has_tsc()) {
      EXPECT_EQ(ref.Tsc(), recs[i].tsc);
    }
    for (uint32_t w = 0; w < ref.extra_words(); ++w) EXPECT_EQ(ref.Extra(w), recs[i].extra[w]);
    EXPECT_EQ(ref.FirstExtraOrZero(), recs[i].extra_words == 0 ? 0u : recs[i].extra[0]);
    ++i;
  }
  EXPECT_EQ(i, recs.size());
  EXPECT_FALSE(cur.AtEnd());
  EXPECT_EQ(cur.offset(), whole);  // the cut-short record's byte offset, for the error
  EXPECT_EQ(cur.remaining(), 8u);
}

TEST(RecordCursorTest, EmptySpanIsAtEnd) {
  RecordCursor cur({});
  Record rec;
  EXPECT_FALSE(cur.Next(rec));
  EXPECT_TRUE(cur.AtEnd());
}

}  // namespace
}  // namespace tracefmt
