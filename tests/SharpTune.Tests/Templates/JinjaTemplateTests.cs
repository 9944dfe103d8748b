using SharpTune.Templates.Jinja;

namespace SharpTune.Tests.Templates;

/// <summary>
/// The Jinja subset against Jinja2 itself: each expected string is what Jinja2 3.1 printed for the template with transformers'
/// environment (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson) and <see cref="Variables"/>.
/// </summary>
public class JinjaTemplateTests
{
    static Dictionary<string, object?> Variables() => new()
    {
        ["messages"] = new List<object?>
        {
            new Dictionary<string, object?> { ["role"] = "system", ["content"] = "S" },
            new Dictionary<string, object?> { ["role"] = "user", ["content"] = " Hi there " },
            new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = "<think>\nr\n</think>\n\nA" },
        },
        ["xs"] = new List<object?> { 3, 1, 2 },
        ["name"] = "World",
        ["d"] = new Dictionary<string, object?> { ["b"] = 1, ["a"] = new List<object?> { 1, "x", null, true, 1.5 } },
        ["n"] = 7,
        ["empty"] = new List<object?>(),
        ["s"] = "a,b,,c",
    };

    public static TheoryData<string, string> Cases => new()
    {
        { "Hello {{ name }}!", "Hello World!" },
        { "{{ 'a\\tb\\n' ~ \"q\\\"\" }}|{{ 'it\\'s' }}", "a\tb\nq\"|it's" },
        { "{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ 7 / 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1.5 + 1 }} {{ 10 / 5 }}", "7 3 3.5 -4 1 2 1024 2.5 2.0" },
        { "{{ 'ab' * 3 }} {{ [1] + [2, 3] }} {{ 'x' ~ 1 ~ none ~ true }}", "ababab [1, 2, 3] x1NoneTrue" },
        { "{{ true }} {{ none }} {{ False }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ 2 >= 3 }} {{ 1 != 2 }}", "True None False True True False True" },
        { "{{ 'b' in 'abc' }} {{ 4 not in xs }} {{ 'a' in d }} {{ 3 in xs }}", "True True True True" },
        { "{{ xs[0] }} {{ xs[-1] }} {{ xs[1:] }} {{ xs[::-1] }} {{ xs[:-1] }} {{ name[1:3] }} {{ name[::-1] }} {{ xs[5:] }} {{ xs[::2] }}", "3 2 [1, 2] [2, 1, 3] [3, 1] or dlroW [] [3, 2]" },
        { "{{ messages[0].role }} {{ messages[1]['content'] }} {{ d.a[1] }} {{ d['b'] }}", "system  Hi there  x 1" },
        { "{% if n > 5 %}big{% elif n > 2 %}mid{% else %}small{% endif %}", "big" },
        { "{% if n < 5 %}big{% elif n > 6 %}mid{% else %}small{% endif %}", "mid" },
        { "{% for x in xs %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}:{{ x }} {% endfor %}", "01TrueFalse33:3 12FalseFalse32:1 23FalseTrue31:2 " },
        { "{% for x in empty %}{{ x }}{% else %}none{% endfor %}", "none" },
        { "{% for x in xs if x > 1 %}{{ x }}{{ loop.length }} {% endfor %}", "32 22 " },
        { "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "b=1;a=[1, 'x', None, True, 1.5];" },
        { "{% for k in d %}{{ k }}{% endfor %}", "ba" },
        { "{% for x in xs %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}", "3" },
        { "{% set ns = namespace(count=0, last=none) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}{% endfor %}{{ ns.count }} {{ ns.last }}", "3 assistant" },
        { "{% set total = 0 %}{% for x in xs %}{% set total = total + x %}{% endfor %}{{ total }}", "0" },
        { "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (1, 2) %}{{ t|length }}", "122" },
        { "{% set block %}inner {{ name }}{% endset %}[{{ block }}]", "[inner World]" },
        { "{% macro greet(who, punct='!') %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(who='C', punct='.') }}", "Hi A! Hi B? Hi C." },
        { "{{ missing }}|{{ missing is defined }}|{{ missing is not defined }}|{{ missing | default('dflt') }}|{{ '' | default('e', true) }}|{{ missing|length }}", "|False|True|dflt|e|0" },
        { "{% if missing %}yes{% else %}no{% endif %}{% for x in missing %}{{ x }}{% endfor %}", "no" },
        { "{{ none is none }} {{ name is string }} {{ xs is string }} {{ false is false }} {{ true is true }} {{ 1 is true }} {{ d is mapping }} {{ xs is iterable }} {{ n is number }} {{ n is odd }} {{ 6 is divisibleby 3 }}", "True True False True True False True True True True True" },
        { "{{ xs|length }} {{ '  pad  '|trim }}| {{ name|lower }} {{ name|upper }} {{ xs|join(', ') }} {{ xs|first }} {{ xs|last }} {{ name|list }} {{ n|string }} {{ d|items|list|length }}", "3 pad| world WORLD 3, 1, 2 3 2 ['W', 'o', 'r', 'l', 'd'] 7 2" },
        { "{{ d|tojson }} {{ 'é\"\\n'|tojson }} {{ [1, 2.5, none, false]|tojson }}", "{\"b\": 1, \"a\": [1, \"x\", null, true, 1.5]} \"é\\\"\\n\" [1, 2.5, null, false]" },
        { "{{ d|tojson(indent=2) }}", "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    \"x\",\n    null,\n    true,\n    1.5\n  ]\n}" },
        { "{{ 'hello world'.title() }} {{ 'Abc'.upper() }} {{ 'Abc'.lower() }} {{ s.split(',') }} {{ ' a  b '.split() }} {{ 'a-b-c'.split('-', 1) }}", "Hello World ABC abc ['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b-c']" },
        { "{{ '<think>x</think>\\n\\nA'.split('</think>')[-1].lstrip('\\n') }}|{{ '\\nxx\\n'.strip('\\n') }}|{{ '  x  '.rstrip() }}|{{ 'aXbXc'.replace('X', '-') }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}", "A|xx|  x|a-b-c|TrueTrue" },
        { "{{ 'a' if n > 1 else 'b' }} {{ 'a' if n > 10 else 'b' }} [{{ 'x' if false }}]", "a b []" },
        { "{{ n > 1 and 'yes' or 'no' }} {{ none or 'fallback' }} {{ not true }} {{ not (1 == 2) }}", "yes fallback False True" },
        { "{{ [1, 2, 3]|length }} {{ {'k': 'v'}['k'] }} {{ {'k': 'v'}.k }} {{ {'k': 'v'}.get('z', 'dz') }}", "3 v v dz" },
        { "{{ xs|map('string')|join }} {{ messages|map(attribute='role')|join(',') }} {{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ messages|rejectattr('role', 'eq', 'user')|map(attribute='role')|list }}", "312 system,user,assistant 1 ['system', 'assistant']" },
        { "{{ messages[1].content|trim|upper }}|{{ 'x' + messages[1].content|trim + 'y' }}", "HI THERE|xHi therey" },
        { "{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ xs|sort if false else 'ns' }}", "[0, 1, 2] [1, 3, 5] ns" },
        { "a\n  {% if true %}\n  b\n  {% endif %}\nc\n", "a\n  b\nc" },
        { "a\n  {%- if true -%}\n  b\n  {%- endif %}\nc {{- ' d ' -}} e", "abc d e" },
        { "  {%+ if true %}x{% endif +%}\ny {# comment #}\nz {#- trimmed -#} w", "  x\ny zw" },
        { "{% for m in messages %}\n  {{ m.role }}\n{% endfor %}\n", "  system\n  user\n  assistant\n" },
        { "{{ 'a' ~ 1.0 ~ 2.50 ~ 1e3 }} {{ 3 * 1.1 }} {{ 0.1 + 0.2 }}", "a1.02.51000.0 3.3000000000000003 0.30000000000000004" },
        { "{{ {'a': 1, 'b': [1, 'two']} }} {{ ['it\\'s', \"q\"] }}", "{'a': 1, 'b': [1, 'two']} [\"it's\", 'q']" },
        { "{{ 'x' in missing }} {{ missing ~ 'y' }} {{ missing == missing2 }} {{ missing != none }} {{ missing is not none }}", "False y True True True" },
        { "{{ xs|unique|list|length }} {{ [3,1]|max }} {{ [3,1]|min }} {{ 'abc'|capitalize }} {{ 'ab cd'|title }} {{ 'xy'|replace('x', 'z') }} {{ '3'|int + 1 }} {{ -3|abs }}", "3 3 1 Abc Ab Cd zy 4 3" },
        { "{% for x in xs %}{{ loop.previtem }}>{{ x }}<{{ loop.nextitem }} {{ loop.cycle('a', 'b') }} {{ loop.revindex0 }}|{% endfor %}", ">3<1 a 2|3>1<2 b 1|1>2< a 0|" },
        { "{{ 'a\\nb'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 3|float }}|{{ '4.5'|float }}|{{ 'x'|int }}", "a\n  b|  a\n  b|2.57|2.0|3.0|4.5|0" },
        { "{{ d.keys()|list }} {{ d.values()|list|length }} {{ d.get('b') }} {{ d.get('zz') }} {{ xs|sum }} {{ [1, 2]|reverse|list }} {{ xs|select('odd')|list }} {{ xs|reject('odd')|list }}", "['b', 'a'] 2 1 None 6 [2, 1] [3, 1] [2]" },
        { "{% set x = 'outer' %}{% if true %}{% set x = 'inner' %}{% endif %}{{ x }} {{ 'a b c'.split(' ', 1) }} {{ 'abcabc'.count('b') }} {{ 'abc'.find('c') }} {{ '-'.join(['a', 'b']) }}", "inner ['a', 'b c'] 2 2 a-b" },
        { "{% for a, b in [[1, 2], [3, 4]] %}{{ a * b }},{% endfor %} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}", "2,12, True True True False" },
        { "{%- for m in messages -%}\n  [{{ m.role }}]\n{%- endfor -%}\n  end", "[system][user][assistant]end" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersLikeJinja2(string source, string expected) =>
        Assert.Equal(expected, JinjaTemplate.Parse(source, "case.jinja").Render(Variables()));

    [Theory]
    [InlineData("{% if true %}x", "never closed")]
    [InlineData("{% for x in %}{% endfor %}", "unexpected")]
    [InlineData("{{ 1 + }}", "unexpected")]
    [InlineData("{% endif %}", "endif")]
    [InlineData("{{ 'abc }}", "never closed")]
    [InlineData("{% frobnicate %}", "unknown statement 'frobnicate'")]
    [InlineData("{{ x | nosuchfilter }}", "unknown filter 'nosuchfilter'")]
    [InlineData("{{ missing.attr }}", "'missing' is undefined")]
    [InlineData("{{ raise_exception('Conversation roles must alternate') }}", "Conversation roles must alternate")]
    [InlineData("{{ 1 / 0 }}", "division by zero")]
    [InlineData("{{ 'a' + 1 }}", "unsupported operand")]
    public void ErrorsNameTheSourceAndLine(string source, string problem)
    {
        var e = Assert.Throws<SharpTuneException>(() => JinjaTemplate.Parse("line one\n" + source, "my_template.jinja").Render(Variables()));
        Assert.StartsWith("my_template.jinja: line 2: ", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void EnableThinkingIsUndefinedUnlessPassed()
    {
        var template = JinjaTemplate.Parse("{{ enable_thinking is defined }}-{{ enable_thinking is false }}", "t");
        Assert.Equal("False-False", template.Render(new Dictionary<string, object?>()));
        Assert.Equal("True-True", template.Render(new Dictionary<string, object?> { ["enable_thinking"] = false }));
    }

    [Fact]
    public void StrftimeNowFormatsTheCurrentDate()
    {
        var rendered = JinjaTemplate.Parse("{{ strftime_now('%d %b %Y') }}", "t").Render(new Dictionary<string, object?>());
        var today = DateTime.Now;
        Assert.Contains(rendered, new[] { today.AddDays(-1), today }.Select(d => d.ToString("dd MMM yyyy", System.Globalization.CultureInfo.InvariantCulture)));
    }
}
