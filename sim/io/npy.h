#pragma once
// Reader of NumPy .npy arrays (format v1.0/2.0/3.0, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
// magic "\x93NUMPY", major/minor version, little-endian header length (uint16 for v1, uint32 for v2/3),
// an ASCII Python dict {'descr', 'fortran_order', 'shape'}, then the C-order data. Only little-endian
// numeric dtypes that router data use are accepted; anything else (big-endian, Fortran order, object
// arrays, a size that does not match the shape) is an InputError naming the file.
#include <cstddef>
#include <string>
#include <vector>

namespace moesim::io {

struct NpyArray {
  std::string dtype;                 // as in the header: "<f4", "<f8", "|u1", "<u2", "<i4", "<i8"
  std::vector<std::size_t> shape;
  std::vector<double> values;        // C order; every accepted dtype converts exactly except int64 > 2^53

  std::size_t dims() const { return shape.size(); }
};

NpyArray read_npy(const std::string& path);

}  // namespace moesim::io
