package driver

// ResultName is the CUDA_ERROR_… name of a CUresult, from a table copied
// from cuda.h (checked against the header by TestErrorNamesMatchHeader
// when it is installed). Errors are named even when the driver cannot be
// asked (cuGetErrorName needs a loaded library).
func ResultName(r Result) string {
	switch r {
	case 0:
		return "CUDA_SUCCESS"
	case 1:
		return "CUDA_ERROR_INVALID_VALUE"
	case 2:
		return "CUDA_ERROR_OUT_OF_MEMORY"
	case 3:
		return "CUDA_ERROR_NOT_INITIALIZED"
	case 4:
		return "CUDA_ERROR_DEINITIALIZED"
	case 5:
		return "CUDA_ERROR_PROFILER_DISABLED"
	case 34:
		return "CUDA_ERROR_STUB_LIBRARY"
	case 46:
		return "CUDA_ERROR_DEVICE_UNAVAILABLE"
	case 100:
		return "CUDA_ERROR_NO_DEVICE"
	case 101:
		return "CUDA_ERROR_INVALID_DEVICE"
	case 102:
		return "CUDA_ERROR_DEVICE_NOT_LICENSED"
	case 200:
		return "CUDA_ERROR_INVALID_IMAGE"
	case 201:
		return "CUDA_ERROR_INVALID_CONTEXT"
	case 205:
		return "CUDA_ERROR_MAP_FAILED"
	case 209:
		return "CUDA_ERROR_NO_BINARY_FOR_GPU"
	case 214:
		return "CUDA_ERROR_ECC_UNCORRECTABLE"
	case 218:
		return "CUDA_ERROR_INVALID_PTX"
	case 221:
		return "CUDA_ERROR_JIT_COMPILER_NOT_FOUND"
	case 222:
		return "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"
	case 300:
		return "CUDA_ERROR_INVALID_SOURCE"
	case 301:
		return "CUDA_ERROR_FILE_NOT_FOUND"
	case 302:
		return "CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND"
	case 303:
		return "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED"
	case 304:
		return "CUDA_ERROR_OPERATING_SYSTEM"
	case 400:
		return "CUDA_ERROR_INVALID_HANDLE"
	case 401:
		return "CUDA_ERROR_ILLEGAL_STATE"
	case 500:
		return "CUDA_ERROR_NOT_FOUND"
	case 600:
		return "CUDA_ERROR_NOT_READY"
	case 700:
		return "CUDA_ERROR_ILLEGAL_ADDRESS"
	case 701:
		return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"
	case 702:
		return "CUDA_ERROR_LAUNCH_TIMEOUT"
	case 708:
		return "CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE"
	case 709:
		return "CUDA_ERROR_CONTEXT_IS_DESTROYED"
	case 710:
		return "CUDA_ERROR_ASSERT"
	case 715:
		return "CUDA_ERROR_ILLEGAL_INSTRUCTION"
	case 716:
		return "CUDA_ERROR_MISALIGNED_ADDRESS"
	case 719:
		return "CUDA_ERROR_LAUNCH_FAILED"
	case 800:
		return "CUDA_ERROR_NOT_PERMITTED"
	case 801:
		return "CUDA_ERROR_NOT_SUPPORTED"
	case 802:
		return "CUDA_ERROR_SYSTEM_NOT_READY"
	case 803:
		return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"
	case 804:
		return "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"
	case 900:
		return "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"
	case 901:
		return "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED"
	case 906:
		return "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT"
	case 908:
		return "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD"
	case 999:
		return "CUDA_ERROR_UNKNOWN"
	}
	return "CUDA_ERROR_" + itoa(int(r))
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
