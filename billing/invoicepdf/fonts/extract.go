//go:build ignore

// extract writes one face of a TrueType collection (.ttc) as a standalone .ttf: fpdf reads
// only single fonts. The tables are copied byte for byte; only the file layout (offsets) and
// head.checkSumAdjustment, which covers the whole file, are new.
//
// wqy-microhei.ttf was made with (Debian package fonts-wqy-microhei 0.2.0-beta-3.1):
//
//	go run billing/invoicepdf/fonts/extract.go /usr/share/fonts/truetype/wqy/wqy-microhei.ttc 0 billing/invoicepdf/fonts/wqy-microhei.ttf
package main

import (
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: extract FONT.ttc INDEX OUT.ttf")
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	index, err := strconv.Atoi(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	out, err := extract(src, index)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(os.Args[3], out, 0o644); err != nil {
		log.Fatal(err)
	}
}

func extract(src []byte, index int) ([]byte, error) {
	be := binary.BigEndian
	if len(src) < 12 || string(src[:4]) != "ttcf" {
		return nil, fmt.Errorf("not a TrueType collection")
	}
	n := int(be.Uint32(src[8:]))
	if index < 0 || index >= n {
		return nil, fmt.Errorf("index %d: the collection has %d fonts", index, n)
	}
	face := int(be.Uint32(src[12+4*index:]))
	numTables := int(be.Uint16(src[face+4:]))
	type table struct {
		tag      string
		checksum uint32
		data     []byte
	}
	tables := make([]table, numTables)
	for i := range tables {
		rec := src[face+12+16*i:]
		off, length := be.Uint32(rec[8:]), be.Uint32(rec[12:])
		tables[i] = table{string(rec[:4]), be.Uint32(rec[4:]), src[off : off+length]}
	}

	// Offset table as in the face (sfnt version, numTables, searchRange, entrySelector,
	// rangeShift), then the records in the same (tag) order, then the data, 4-byte aligned.
	out := append([]byte(nil), src[face:face+12]...)
	out = append(out, make([]byte, 16*numTables)...)
	headAt := -1
	for i, t := range tables {
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
		rec := out[12+16*i:]
		copy(rec, t.tag)
		be.PutUint32(rec[4:], t.checksum)
		be.PutUint32(rec[8:], uint32(len(out)))
		be.PutUint32(rec[12:], uint32(len(t.data)))
		if t.tag == "head" {
			headAt = len(out)
		}
		out = append(out, t.data...)
	}
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	if headAt < 0 {
		return nil, fmt.Errorf("no head table")
	}
	be.PutUint32(out[headAt+8:], 0)
	var sum uint32
	for i := 0; i < len(out); i += 4 {
		sum += be.Uint32(out[i:])
	}
	be.PutUint32(out[headAt+8:], 0xB1B0AFBA-sum)
	return out, nil
}
