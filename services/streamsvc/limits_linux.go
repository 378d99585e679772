package streamsvc

import "syscall"

// systemMemory is the machine's memory in bytes (0: unknown).
func systemMemory() int64 {
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		return 0
	}
	return int64(info.Totalram) * int64(info.Unit)
}

// diskAvailable is the free space an unprivileged user has on dir's disk
// (0: unknown).
func diskAvailable(dir string) int64 {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0
	}
	return int64(fs.Bavail) * int64(fs.Bsize)
}
