//go:build !linux

package transcode

// favourMainThread does nothing where threads cannot be reniced one by one (see priority_linux.go).
func favourMainThread(int) (stop func()) { return func() {} }
