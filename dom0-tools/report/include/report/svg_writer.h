// report/svg_writer.h — just enough SVG for a chart a person opens in a browser: rectangles,
// lines, polylines and text, with text escaped so a domain name cannot inject markup.
//
//   SvgWriter svg(800, 600);
//   svg.Rect(0, 0, 800, 600, "#ffffff");
//   svg.Polyline({{10, 10}, {20, 15}}, "#1f77b4", 1.5);
//   svg.Text(400, 20, "CPU %", TextStyle::Sized(14).Middle());
//   std::string document = svg.Finish();
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xenbake::report {

struct TextStyle {
  std::string_view anchor = "start";  // start, middle, end
  double size = 12;
  std::string_view colour = "#222222";
  bool bold = false;

  // TextStyle::Sized(14).Middle().Bold()
  static TextStyle Sized(double size) {
    TextStyle style;
    style.size = size;
    return style;
  }
  TextStyle Middle() const { return With(&TextStyle::anchor, "middle"); }
  TextStyle End() const { return With(&TextStyle::anchor, "end"); }
  TextStyle Bold() const { return With(&TextStyle::bold, true); }
  TextStyle Coloured(std::string_view c) const { return With(&TextStyle::colour, c); }

 private:
  template <typename T, typename V>
  TextStyle With(T TextStyle::*field, V value) const {
    TextStyle style = *this;
    style.*field = value;
    return style;
  }
};

class SvgWriter {
 public:
  SvgWriter(double width, double height);
  void Rect(double x, double y, double w, double h, std::string_view fill,
            std::string_view stroke = "none");
  void Line(double x1, double y1, double x2, double y2, std::string_view stroke, double width = 1.0,
            bool dashed = false);
  void Polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke,
                double width = 1.5);
  void Text(double x, double y, std::string_view text, const TextStyle& style = {});
  // Closes the document and returns it.
  std::string Finish();

 private:
  std::string out_;
};

// Text safe inside an SVG element or attribute.
std::string XmlEscape(std::string_view text);

}  // namespace xenbake::report
