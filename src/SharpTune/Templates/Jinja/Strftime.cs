using System.Globalization;
using System.Text;

namespace SharpTune.Templates.Jinja;

/// <summary>Python's strftime for the directives chat templates use (Llama 3.x puts today's date in its system prompt).</summary>
static class Strftime
{
    public static string Format(DateTime time, string format)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char d = format[++i];
            bool noPad = d == '-' && i + 1 < format.Length;
            if (noPad) d = format[++i];
            string Pad(int v) => noPad ? v.ToString(c) : v.ToString("00", c);
            sb.Append(d switch
            {
                'Y' => time.Year.ToString(c),
                'y' => Pad(time.Year % 100),
                'm' => Pad(time.Month),
                'd' => Pad(time.Day),
                'H' => Pad(time.Hour),
                'I' => Pad(time.Hour % 12 == 0 ? 12 : time.Hour % 12),
                'M' => Pad(time.Minute),
                'S' => Pad(time.Second),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'b' => time.ToString("MMM", c),
                'B' => time.ToString("MMMM", c),
                'a' => time.ToString("ddd", c),
                'A' => time.ToString("dddd", c),
                'j' => noPad ? time.DayOfYear.ToString(c) : time.DayOfYear.ToString("000", c),
                '%' => "%",
                _ => "%" + (noPad ? "-" : "") + d,
            });
        }
        return sb.ToString();
    }
}
