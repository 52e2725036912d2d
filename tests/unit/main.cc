#define BOOST_TEST_MODULE ragstream_unit
#include <boost/test/unit_test.hpp>
