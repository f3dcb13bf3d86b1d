package history

import (
	"math"
	"strconv"
)

// SparklinePoints returns the points attribute of an SVG <polyline> that
// draws series in a box width wide and height high (SVG coordinates: y
// grows downwards). The algorithm, which the page's script repeats on
// each refresh and must keep identical:
//
//   - the top of the box is the series' maximum, or 1 if that is smaller
//     (an idle series is a flat line at the bottom, not a full-height one);
//     negative values count as 0;
//   - point i of n is at x = i×width/(n−1) (a lone point at x = width) and
//     y = height − v/top×height;
//   - each coordinate is rounded to one decimal and written the shortest
//     way ("12", "12.5"), "x,y" pairs separated by one space.
//
// In JavaScript:
//
//	function sparkline(s, w, h) {
//	  const top = Math.max(1, ...s), r = v => String(Math.round(v * 10) / 10);
//	  return s.map((v, i) => r(s.length > 1 ? i * w / (s.length - 1) : w) +
//	    ',' + r(h - Math.max(v, 0) / top * h)).join(' ');
//	}
//
// An empty series gives "".
func SparklinePoints(series []int64, width, height float64) string {
	top := int64(1)
	for _, v := range series {
		top = max(top, v)
	}
	n := len(series)
	b := make([]byte, 0, n*10)
	for i, v := range series {
		x := width
		if n > 1 {
			x = float64(i) * width / float64(n-1)
		}
		y := height - float64(max(v, 0))/float64(top)*height
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendCoord(b, x)
		b = append(b, ',')
		b = appendCoord(b, y)
	}
	return string(b)
}

// appendCoord rounds to one decimal and formats like JavaScript's
// String(): no trailing zeros, no exponent at sparkline sizes, never "-0".
func appendCoord(b []byte, v float64) []byte {
	v = math.Round(v*10) / 10
	if v == 0 {
		v = 0 // turns -0 into 0
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}
