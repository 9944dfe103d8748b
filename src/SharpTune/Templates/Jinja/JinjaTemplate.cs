using System.Text;

namespace SharpTune.Templates.Jinja;

/// <summary>
/// A parsed Jinja2 template (the subset chat templates use, see docs/TEMPLATES.md), rendered with transformers' settings:
/// trim_blocks and lstrip_blocks on, undefined names falsy and printing as nothing, loop controls enabled.
/// Parse and render errors are <see cref="SharpTuneException"/>s naming the source and line.
/// </summary>
public sealed class JinjaTemplate
{
    readonly List<Node> body;

    public string SourceName { get; }

    JinjaTemplate(List<Node> body, string sourceName)
    {
        this.body = body;
        SourceName = sourceName;
    }

    public static JinjaTemplate Parse(string source, string sourceName)
    {
        // Jinja drops a single newline at the end of the template (keep_trailing_newline=False).
        if (source.EndsWith('\n')) source = source[..^(source.EndsWith("\r\n") ? 2 : 1)];
        var tokens = new JinjaLexer(source, sourceName).Tokenize();
        return new JinjaTemplate(new JinjaParser(tokens, sourceName).ParseTemplate(), sourceName);
    }

    /// <summary>Renders with <paramref name="variables"/> (converted from plain .NET values: strings, numbers, bools, lists, dictionaries).</summary>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        var globals = new Frame(null);
        JinjaBuiltins.AddGlobals(globals.Variables);
        var top = new Frame(globals);
        foreach (var (name, value) in variables) top.Variables[name] = JinjaConvert.FromDotNet(value);
        var output = new StringBuilder();
        new Renderer(SourceName, output).Execute(body, top);
        return output.ToString();
    }

    sealed class Frame(Frame? parent)
    {
        readonly Frame? parent = parent;

        public Dictionary<string, object?> Variables { get; } = [];

        public object? Lookup(string name)
        {
            for (var frame = this; frame != null; frame = frame.parent)
                if (frame.Variables.TryGetValue(name, out var value)) return value;
            return new JinjaUndefined(name);
        }
    }

    enum Flow { Normal, Break, Continue }

    sealed class Renderer(string sourceName, StringBuilder output)
    {
        StringBuilder output = output;

        public Flow Execute(List<Node> nodes, Frame frame)
        {
            foreach (var node in nodes)
            {
                var flow = ExecuteNode(node, frame);
                if (flow != Flow.Normal) return flow;
            }
            return Flow.Normal;
        }

        Flow ExecuteNode(Node node, Frame frame)
        {
            try
            {
                return ExecuteUnchecked(node, frame);
            }
            catch (JinjaRuntimeException e)
            {
                throw new SharpTuneException($"{sourceName}: line {node.Line}: {e.Message}");
            }
        }

        Flow ExecuteUnchecked(Node node, Frame frame)
        {
            switch (node)
            {
                case TextNode text:
                    output.Append(text.Text);
                    return Flow.Normal;
                case OutputNode o:
                    output.Append(JinjaValues.ToStr(Eval(o.Value, frame)));
                    return Flow.Normal;
                case IfNode ifNode:
                    foreach (var (condition, branch) in ifNode.Branches)
                        if (JinjaValues.IsTrue(Eval(condition, frame))) return Execute(branch, frame);
                    return ifNode.ElseBody == null ? Flow.Normal : Execute(ifNode.ElseBody, frame);
                case ForNode forNode:
                    ExecuteFor(forNode, frame);
                    return Flow.Normal;
                case SetNode set:
                    ExecuteSet(set, frame);
                    return Flow.Normal;
                case SetBlockNode setBlock:
                    frame.Variables[setBlock.Target] = Capture(setBlock.Body, frame);
                    return Flow.Normal;
                case MacroNode macro:
                    frame.Variables[macro.Name] = MakeMacro(macro, frame);
                    return Flow.Normal;
                case BreakNode: return Flow.Break;
                case ContinueNode: return Flow.Continue;
                default: throw new JinjaRuntimeException($"cannot execute {node.GetType().Name}");
            }
        }

        string Capture(List<Node> nodes, Frame frame)
        {
            var saved = output;
            output = new StringBuilder();
            try
            {
                Execute(nodes, frame);
                return output.ToString();
            }
            finally
            {
                output = saved;
            }
        }

        void ExecuteFor(ForNode node, Frame frame)
        {
            var items = JinjaValues.Iterate(Eval(node.Iterable, frame));
            var loopFrame = new Frame(frame);
            if (node.Filter != null)
                items = items.Where(item => { Bind(loopFrame, node.Targets, item); return JinjaValues.IsTrue(Eval(node.Filter, loopFrame)); }).ToList();
            if (items.Count == 0)
            {
                if (node.ElseBody != null) Execute(node.ElseBody, frame);
                return;
            }
            for (int i = 0; i < items.Count; i++)
            {
                Bind(loopFrame, node.Targets, items[i]);
                loopFrame.Variables["loop"] = LoopVariable(items, i);
                if (Execute(node.Body, loopFrame) == Flow.Break) break;
            }
        }

        static Dictionary<string, object?> LoopVariable(List<object?> items, int i)
        {
            int n = items.Count;
            return new()
            {
                ["index0"] = (long)i, ["index"] = (long)(i + 1), ["revindex0"] = (long)(n - 1 - i), ["revindex"] = (long)(n - i),
                ["first"] = i == 0, ["last"] = i == n - 1, ["length"] = (long)n, ["depth"] = 1L, ["depth0"] = 0L,
                ["previtem"] = i > 0 ? items[i - 1] : new JinjaUndefined("loop.previtem"),
                ["nextitem"] = i < n - 1 ? items[i + 1] : new JinjaUndefined("loop.nextitem"),
                ["cycle"] = new JinjaFunction("loop.cycle", (args, _) =>
                    args.Count == 0 ? throw new JinjaRuntimeException("loop.cycle() needs at least one argument") : args[i % args.Count]),
            };
        }

        static void Bind(Frame frame, List<string> targets, object? item)
        {
            if (targets.Count == 1)
            {
                frame.Variables[targets[0]] = item;
                return;
            }
            var values = JinjaValues.Iterate(item);
            if (values.Count != targets.Count)
                throw new JinjaRuntimeException($"cannot unpack {values.Count} values into {targets.Count} names ({string.Join(", ", targets)})");
            for (int i = 0; i < targets.Count; i++) frame.Variables[targets[i]] = values[i];
        }

        void ExecuteSet(SetNode node, Frame frame)
        {
            var value = Eval(node.Value, frame);
            if (node.Attribute != null)
            {
                if (frame.Lookup(node.Targets[0]) is not JinjaNamespace ns)
                    throw new JinjaRuntimeException($"cannot assign attribute '{node.Attribute}' on '{node.Targets[0]}': it is not a namespace");
                ns.Attributes[node.Attribute] = value;
                return;
            }
            Bind(frame, node.Targets, value);
        }

        JinjaFunction MakeMacro(MacroNode macro, Frame definingFrame) => new(macro.Name, (args, kwargs) =>
        {
            if (args.Count > macro.Parameters.Count)
                throw new JinjaRuntimeException($"macro '{macro.Name}' takes {macro.Parameters.Count} arguments, got {args.Count}");
            var callFrame = new Frame(definingFrame);
            for (int i = 0; i < macro.Parameters.Count; i++)
            {
                var (name, defaultValue) = macro.Parameters[i];
                callFrame.Variables[name] = i < args.Count ? args[i]
                    : kwargs.TryGetValue(name, out var given) ? given
                    : defaultValue != null ? Eval(defaultValue, callFrame)
                    : new JinjaUndefined(name);
            }
            return Capture(macro.Body, callFrame);
        });

        object? Eval(Expr expr, Frame frame)
        {
            switch (expr)
            {
                case LiteralExpr literal: return literal.Value;
                case NameExpr name: return frame.Lookup(name.Name);
                case ListExpr list: return list.Items.Select(item => Eval(item, frame)).ToList();
                case DictExpr dict:
                    var result = new Dictionary<string, object?>();
                    foreach (var (key, value) in dict.Items) result[JinjaValues.ToStr(Eval(key, frame))] = Eval(value, frame);
                    return result;
                case AttributeExpr attribute: return JinjaBuiltins.GetAttribute(Eval(attribute.Target, frame), attribute.Name);
                case ItemExpr item: return JinjaBuiltins.GetItem(Eval(item.Target, frame), Eval(item.Key, frame));
                case SliceExpr slice:
                    return JinjaValues.Slice(Eval(slice.Target, frame), EvalOptional(slice.Start, frame), EvalOptional(slice.Stop, frame), EvalOptional(slice.Step, frame));
                case CallExpr call:
                    var callee = Eval(call.Callee, frame);
                    if (callee is not JinjaFunction function)
                        throw new JinjaRuntimeException(callee is JinjaUndefined u ? $"'{u.Name}' is undefined" : $"{JinjaValues.TypeName(callee)} is not callable");
                    return function.Invoke(call.Args.Select(a => Eval(a, frame)).ToList(), call.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, frame)));
                case FilterExpr filter:
                    return JinjaFilters.Apply(filter.Name, Eval(filter.Value, frame), filter.Args.Select(a => Eval(a, frame)).ToList(),
                        filter.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, frame)));
                case TestExpr test:
                    var passed = JinjaBuiltins.ApplyTest(test.Name, Eval(test.Value, frame), test.Args.Select(a => Eval(a, frame)).ToList());
                    return passed != test.Negated;
                case UnaryExpr unary:
                    var operand = Eval(unary.Operand, frame);
                    return unary.Op switch
                    {
                        "not" => !JinjaValues.IsTrue(operand),
                        "-" => operand is double d ? -d : (object)(-JinjaValues.ToLong(JinjaOperators.RequireDefined(operand))),
                        _ => JinjaOperators.RequireDefined(operand),
                    };
                case BinaryExpr binary when binary.Op == "and":
                    var left = Eval(binary.Left, frame);
                    return JinjaValues.IsTrue(left) ? Eval(binary.Right, frame) : left;
                case BinaryExpr binary when binary.Op == "or":
                    var first = Eval(binary.Left, frame);
                    return JinjaValues.IsTrue(first) ? first : Eval(binary.Right, frame);
                case BinaryExpr binary:
                    return JinjaOperators.Apply(binary.Op, Eval(binary.Left, frame), Eval(binary.Right, frame));
                case ConditionalExpr conditional:
                    if (JinjaValues.IsTrue(Eval(conditional.Condition, frame))) return Eval(conditional.Then, frame);
                    return conditional.Else == null ? new JinjaUndefined("else") : Eval(conditional.Else, frame);
                default:
                    throw new JinjaRuntimeException($"cannot evaluate {expr.GetType().Name}");
            }
        }

        object? EvalOptional(Expr? expr, Frame frame) => expr == null ? null : Eval(expr, frame);
    }
}
