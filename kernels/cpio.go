package main

import (
	"bytes"
	"fmt"
)

// cpioWriter writes the "newc" cpio archive the kernel unpacks as an
// initramfs: a 110-byte ASCII header per entry, name and data padded to 4.
type cpioWriter struct {
	buf bytes.Buffer
	ino int
}

func newCPIO() *cpioWriter { return &cpioWriter{} }

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
)

func (w *cpioWriter) entry(name string, mode int, data []byte) {
	w.ino++
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	w.buf.WriteString(name)
	w.buf.WriteByte(0)
	w.pad()
	w.buf.Write(data)
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}

func (w *cpioWriter) dir(name string)                      { w.entry(name, modeDir|0o755, nil) }
func (w *cpioWriter) file(name string, perm int, b []byte) { w.entry(name, modeFile|perm, b) }
func (w *cpioWriter) symlink(name, target string)          { w.entry(name, modeSymlink|0o777, []byte(target)) }

// bytes ends the archive with its trailer.
func (w *cpioWriter) bytes() []byte {
	w.entry("TRAILER!!!", 0, nil)
	return w.buf.Bytes()
}
