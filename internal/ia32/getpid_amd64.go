package ia32

func getpid32() int64
