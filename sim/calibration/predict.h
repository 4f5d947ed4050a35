#pragma once
// Internal to sim/calibration: the rates and times behind predict(), shared by the replay (predict.cpp)
// and the fit (fit.cpp), which solves for the same rates predict uses.
#include "sim/calibration/calibrate.h"

namespace moesim::calibrate {

// Matrix rate of a precision on the device's tensor (Cube) units; FP32 until calibrated: matrix_fp32,
// else half the non-tensor BF16 rate.
flops_per_second matrix_peak(MatrixPrecision p, const DeviceSpec& d);
// TF32 rate of FP32 GEMMs on tensor cores; until calibrated half the BF16 tensor rate.
flops_per_second tf32_rate(const DeviceSpec& d);
// A TF32 kernel whose CUTLASS name gives an operand alignment under 16 bytes, and its rate.
bool unaligned_tf32(const Sample& s);
flops_per_second tf32_unaligned_rate(const DeviceSpec& d);
// The device with peak_fraction 1: for kernels whose fitted rate is already the achieved one.
DeviceSpec at_own_rate(DeviceSpec d);
// Time of a matrix-vector kernel: its memory roofline plus the GEMV fixed cost.
seconds gemv_time(const Sample& s, const DeviceSpec& d);
// Time of a compute sample had it run alone on the device (predict without the collective's slowdown).
seconds predict_alone(const Sample& s, const HardwareProfile& hw);

// |predicted - measured| / measured, in percent.
double abs_error_pct(seconds predicted, seconds measured);
// The samples the replay scores and the fit uses: predictable, with a measured time.
bool scored(const Sample& s);

}  // namespace moesim::calibrate
