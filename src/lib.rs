//! libtapline.so
