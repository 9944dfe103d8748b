using System.Globalization;

namespace SharpTune.Templates.Jinja;

/// <summary>Recursive-descent parser for the statement and expression grammar of Jinja2 (operator precedence as in Jinja's own parser).</summary>
sealed class JinjaParser(List<Token> tokens, string sourceName)
{
    int index;

    Token Current => tokens[index];
    Token Next() => tokens[index++];

    public List<Node> ParseTemplate()
    {
        var body = ParseBody(out var stoppedAt);
        if (stoppedAt != null) throw Error($"unexpected '{{% {stoppedAt} %}}' with no open block", Current.Line);
        return body;
    }

    /// <summary>Parses nodes until end of input or a block tag whose keyword is in <paramref name="stopAt"/> (consumed up to the keyword).</summary>
    List<Node> ParseBody(out string? stoppedAt, params string[] stopAt)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.End:
                    stoppedAt = null;
                    return nodes;
                case TokenKind.Text:
                    nodes.Add(new TextNode(Next().Value, token.Line));
                    break;
                case TokenKind.VarBegin:
                    Next();
                    nodes.Add(new OutputNode(ParseExpression(), token.Line));
                    Expect(TokenKind.VarEnd);
                    break;
                case TokenKind.BlockBegin:
                    var keyword = tokens[index + 1];
                    if (keyword.Kind == TokenKind.Name && (stopAt.Contains(keyword.Value) || IsEndTag(keyword.Value)))
                    {
                        if (!stopAt.Contains(keyword.Value)) throw Error($"unexpected '{keyword.Value}'", keyword.Line);
                        index += 2; // '{%' and the keyword
                        stoppedAt = keyword.Value;
                        return nodes;
                    }
                    Next();
                    var statement = ParseStatement();
                    if (statement != null) nodes.Add(statement);
                    break;
                default:
                    throw Error($"unexpected {token}", token.Line);
            }
        }
    }

    static bool IsEndTag(string keyword) => keyword.StartsWith("end", StringComparison.Ordinal) || keyword is "else" or "elif";

    Node? ParseStatement()
    {
        var keyword = Expect(TokenKind.Name);
        switch (keyword.Value)
        {
            case "if": return ParseIf(keyword.Line);
            case "for": return ParseFor(keyword.Line);
            case "set": return ParseSet(keyword.Line);
            case "macro": return ParseMacro(keyword.Line);
            case "break": Expect(TokenKind.BlockEnd); return new BreakNode(keyword.Line);
            case "continue": Expect(TokenKind.BlockEnd); return new ContinueNode(keyword.Line);
            case "generation":
                // transformers' {% generation %} marks assistant text for masks; its content renders unchanged.
                Expect(TokenKind.BlockEnd);
                var body = ParseBody(out var end, "endgeneration");
                CloseBlock(end, "endgeneration", keyword.Line);
                return new IfNode([(new LiteralExpr(true, keyword.Line), body)], null, keyword.Line);
            default: throw Error($"unknown statement '{keyword.Value}'", keyword.Line);
        }
    }

    void CloseBlock(string? stoppedAt, string expected, int openedLine)
    {
        if (stoppedAt == null) throw Error($"block opened on line {openedLine} is never closed with '{{% {expected} %}}'", Current.Line);
        Expect(TokenKind.BlockEnd);
    }

    Node ParseIf(int line)
    {
        var branches = new List<(Expr, List<Node>)>();
        List<Node>? elseBody = null;
        var condition = ParseExpression();
        while (true)
        {
            Expect(TokenKind.BlockEnd);
            var body = ParseBody(out var stop, "elif", "else", "endif");
            branches.Add((condition, body));
            if (stop == null) throw Error($"'if' opened on line {line} is never closed with '{{% endif %}}'", Current.Line);
            if (stop == "elif")
            {
                condition = ParseExpression();
                continue;
            }
            if (stop == "else")
            {
                Expect(TokenKind.BlockEnd);
                elseBody = ParseBody(out stop, "endif");
                if (stop == null) throw Error($"'if' opened on line {line} is never closed with '{{% endif %}}'", Current.Line);
            }
            Expect(TokenKind.BlockEnd);
            return new IfNode(branches, elseBody, line);
        }
    }

    Node ParseFor(int line)
    {
        var targets = ParseTargetNames();
        ExpectName("in");
        var iterable = ParseConditional(allowConditional: false);
        Expr? filter = null;
        if (Current.Is(TokenKind.Name, "if"))
        {
            Next();
            filter = ParseConditional(allowConditional: false);
        }
        if (Current.Is(TokenKind.Name, "recursive")) throw Error("recursive for loops are not supported", Current.Line);
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(out var stop, "else", "endfor");
        List<Node>? elseBody = null;
        if (stop == "else")
        {
            Expect(TokenKind.BlockEnd);
            elseBody = ParseBody(out stop, "endfor");
        }
        if (stop == null) throw Error($"'for' opened on line {line} is never closed with '{{% endfor %}}'", Current.Line);
        Expect(TokenKind.BlockEnd);
        return new ForNode(targets, iterable, filter, body, elseBody, line);
    }

    List<string> ParseTargetNames()
    {
        bool parenthesized = Current.Is(TokenKind.Operator, "(");
        if (parenthesized) Next();
        var names = new List<string> { Expect(TokenKind.Name).Value };
        while (Current.Is(TokenKind.Operator, ","))
        {
            Next();
            names.Add(Expect(TokenKind.Name).Value);
        }
        if (parenthesized) ExpectOperator(")");
        return names;
    }

    Node ParseSet(int line)
    {
        var first = Expect(TokenKind.Name).Value;
        if (Current.Is(TokenKind.Operator, "."))
        {
            Next();
            var attribute = Expect(TokenKind.Name).Value;
            ExpectOperator("=");
            var value = ParseExpression();
            Expect(TokenKind.BlockEnd);
            return new SetNode([first], attribute, value, line);
        }
        var targets = new List<string> { first };
        while (Current.Is(TokenKind.Operator, ","))
        {
            Next();
            targets.Add(Expect(TokenKind.Name).Value);
        }
        if (Current.Kind == TokenKind.BlockEnd && targets.Count == 1)
        {
            Next();
            var body = ParseBody(out var stop, "endset");
            CloseBlock(stop, "endset", line);
            return new SetBlockNode(first, body, line);
        }
        ExpectOperator("=");
        var expr = ParseExpression();
        Expect(TokenKind.BlockEnd);
        return new SetNode(targets, null, expr, line);
    }

    Node ParseMacro(int line)
    {
        var name = Expect(TokenKind.Name).Value;
        ExpectOperator("(");
        var parameters = new List<(string, Expr?)>();
        while (!Current.Is(TokenKind.Operator, ")"))
        {
            if (parameters.Count > 0) ExpectOperator(",");
            var parameter = Expect(TokenKind.Name).Value;
            Expr? defaultValue = null;
            if (Current.Is(TokenKind.Operator, "="))
            {
                Next();
                defaultValue = ParseExpression();
            }
            parameters.Add((parameter, defaultValue));
        }
        Next();
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(out var stop, "endmacro");
        CloseBlock(stop, "endmacro", line);
        return new MacroNode(name, parameters, body, line);
    }

    // ---- expressions, lowest precedence first ----

    public Expr ParseExpression() => ParseTupleOrConditional();

    Expr ParseTupleOrConditional()
    {
        var first = ParseConditional(allowConditional: true);
        if (!Current.Is(TokenKind.Operator, ",")) return first;
        var items = new List<Expr> { first };
        while (Current.Is(TokenKind.Operator, ","))
        {
            Next();
            if (Current.Kind is TokenKind.BlockEnd or TokenKind.VarEnd) break;
            items.Add(ParseConditional(allowConditional: true));
        }
        return new ListExpr(items, first.Line);
    }

    Expr ParseConditional(bool allowConditional)
    {
        var value = ParseOr();
        while (allowConditional && Current.Is(TokenKind.Name, "if"))
        {
            Next();
            var condition = ParseOr();
            Expr? otherwise = null;
            if (Current.Is(TokenKind.Name, "else"))
            {
                Next();
                otherwise = ParseConditional(allowConditional: true);
            }
            value = new ConditionalExpr(condition, value, otherwise, value.Line);
        }
        return value;
    }

    Expr ParseOr()
    {
        var left = ParseAnd();
        while (Current.Is(TokenKind.Name, "or")) left = new BinaryExpr("or", left, Advance(ParseAnd), left.Line);
        return left;
    }

    Expr ParseAnd()
    {
        var left = ParseNot();
        while (Current.Is(TokenKind.Name, "and")) left = new BinaryExpr("and", left, Advance(ParseNot), left.Line);
        return left;
    }

    Expr ParseNot()
    {
        if (Current.Is(TokenKind.Name, "not")) return new UnaryExpr("not", Advance(ParseNot), Current.Line);
        return ParseCompare();
    }

    Expr ParseCompare()
    {
        var left = ParseConcat();
        while (true)
        {
            var token = Current;
            if (token.Kind == TokenKind.Operator && token.Value is "==" or "!=" or "<" or "<=" or ">" or ">=")
                left = new BinaryExpr(token.Value, left, Advance(ParseConcat), token.Line);
            else if (token.Is(TokenKind.Name, "in"))
                left = new BinaryExpr("in", left, Advance(ParseConcat), token.Line);
            else if (token.Is(TokenKind.Name, "not") && tokens[index + 1].Is(TokenKind.Name, "in"))
            {
                Next();
                left = new BinaryExpr("not in", left, Advance(ParseConcat), token.Line);
            }
            else return left;
        }
    }

    Expr ParseConcat()
    {
        var left = ParseAdditive();
        while (Current.Is(TokenKind.Operator, "~")) left = new BinaryExpr("~", left, Advance(ParseAdditive), left.Line);
        return left;
    }

    Expr ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Current.Kind == TokenKind.Operator && Current.Value is "+" or "-")
            left = new BinaryExpr(Current.Value, left, Advance(ParseMultiplicative), left.Line);
        return left;
    }

    Expr ParseMultiplicative()
    {
        var left = ParsePower();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
            left = new BinaryExpr(Current.Value, left, Advance(ParsePower), left.Line);
        return left;
    }

    Expr ParsePower()
    {
        var left = ParseUnary();
        while (Current.Is(TokenKind.Operator, "**")) left = new BinaryExpr("**", left, Advance(() => ParseUnary()), left.Line);
        return left;
    }

    /// <remarks>As in Jinja, filters apply to the negated value: <c>-3|abs</c> is 3.</remarks>
    Expr ParseUnary(bool withFilters = true)
    {
        Expr value;
        if (Current.Kind == TokenKind.Operator && Current.Value is "-" or "+")
        {
            var op = Next();
            value = new UnaryExpr(op.Value, ParseUnary(withFilters: false), op.Line);
        }
        else value = ParsePostfix(ParsePrimary());
        return withFilters ? ParseFiltersAndTests(value) : value;
    }

    Expr ParseFiltersAndTests(Expr value)
    {
        while (true)
        {
            if (Current.Is(TokenKind.Operator, "|"))
            {
                Next();
                var name = ParseDottedName();
                var (args, kwargs) = Current.Is(TokenKind.Operator, "(") ? ParseCallArguments() : ([], []);
                value = ParsePostfix(new FilterExpr(value, name, args, kwargs, value.Line));
            }
            else if (Current.Is(TokenKind.Name, "is"))
            {
                Next();
                bool negated = false;
                if (Current.Is(TokenKind.Name, "not"))
                {
                    Next();
                    negated = true;
                }
                var name = Expect(TokenKind.Name).Value;
                List<Expr> args = [];
                if (Current.Is(TokenKind.Operator, "(")) args = ParseCallArguments().Args;
                else if (Current.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                         || (Current.Kind == TokenKind.Name && Current.Value is not ("and" or "or" or "else" or "if" or "in" or "not" or "is")))
                    args = [ParsePostfix(ParsePrimary())]; // `x is divisibleby 3`, `x is sameas none`
                value = new TestExpr(value, name, args, negated, value.Line);
            }
            else return value;
        }
    }

    string ParseDottedName()
    {
        var name = Expect(TokenKind.Name).Value;
        while (Current.Is(TokenKind.Operator, "."))
        {
            Next();
            name += "." + Expect(TokenKind.Name).Value;
        }
        return name;
    }

    Expr ParsePostfix(Expr value)
    {
        while (true)
        {
            var token = Current;
            if (token.Is(TokenKind.Operator, "."))
            {
                Next();
                var name = Next();
                if (name.Kind is not (TokenKind.Name or TokenKind.Integer)) throw Error($"expected an attribute name after '.', got {name}", name.Line);
                value = name.Kind == TokenKind.Integer
                    ? new ItemExpr(value, new LiteralExpr(long.Parse(name.Value, CultureInfo.InvariantCulture), name.Line), name.Line)
                    : new AttributeExpr(value, name.Value, name.Line);
            }
            else if (token.Is(TokenKind.Operator, "["))
            {
                Next();
                value = ParseSubscript(value, token.Line);
            }
            else if (token.Is(TokenKind.Operator, "("))
            {
                var (args, kwargs) = ParseCallArguments();
                value = new CallExpr(value, args, kwargs, token.Line);
            }
            else return value;
        }
    }

    Expr ParseSubscript(Expr target, int line)
    {
        Expr? start = null, stop = null, step = null;
        if (!Current.Is(TokenKind.Operator, ":")) start = ParseExpression();
        if (!Current.Is(TokenKind.Operator, ":"))
        {
            ExpectOperator("]");
            return new ItemExpr(target, start!, line);
        }
        Next();
        if (!Current.Is(TokenKind.Operator, ":") && !Current.Is(TokenKind.Operator, "]")) stop = ParseExpression();
        if (Current.Is(TokenKind.Operator, ":"))
        {
            Next();
            if (!Current.Is(TokenKind.Operator, "]")) step = ParseExpression();
        }
        ExpectOperator("]");
        return new SliceExpr(target, start, stop, step, line);
    }

    (List<Expr> Args, List<(string, Expr)> Kwargs) ParseCallArguments()
    {
        ExpectOperator("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!Current.Is(TokenKind.Operator, ")"))
        {
            if (args.Count + kwargs.Count > 0) ExpectOperator(",");
            if (Current.Is(TokenKind.Operator, ")")) break;
            if (Current.Kind == TokenKind.Name && tokens[index + 1].Is(TokenKind.Operator, "="))
            {
                var name = Next().Value;
                Next();
                kwargs.Add((name, ParseConditional(allowConditional: true)));
            }
            else args.Add(ParseConditional(allowConditional: true));
        }
        Next();
        return (args, kwargs);
    }

    Expr ParsePrimary()
    {
        var token = Next();
        switch (token.Kind)
        {
            case TokenKind.Name:
                return token.Value switch
                {
                    "true" or "True" => new LiteralExpr(true, token.Line),
                    "false" or "False" => new LiteralExpr(false, token.Line),
                    "none" or "None" => new LiteralExpr(null, token.Line),
                    _ => new NameExpr(token.Value, token.Line),
                };
            case TokenKind.String:
                var text = token.Value;
                while (Current.Kind == TokenKind.String) text += Next().Value; // adjacent literals concatenate
                return new LiteralExpr(text, token.Line);
            case TokenKind.Integer:
                return new LiteralExpr(long.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case TokenKind.Float:
                return new LiteralExpr(double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case TokenKind.Operator when token.Value == "(":
                if (Current.Is(TokenKind.Operator, ")"))
                {
                    Next();
                    return new ListExpr([], token.Line);
                }
                var inner = ParseExpression();
                ExpectOperator(")");
                return inner;
            case TokenKind.Operator when token.Value == "[":
                var items = new List<Expr>();
                while (!Current.Is(TokenKind.Operator, "]"))
                {
                    if (items.Count > 0) ExpectOperator(",");
                    if (Current.Is(TokenKind.Operator, "]")) break;
                    items.Add(ParseConditional(allowConditional: true));
                }
                Next();
                return new ListExpr(items, token.Line);
            case TokenKind.Operator when token.Value == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!Current.Is(TokenKind.Operator, "}"))
                {
                    if (pairs.Count > 0) ExpectOperator(",");
                    if (Current.Is(TokenKind.Operator, "}")) break;
                    var key = ParseConditional(allowConditional: true);
                    ExpectOperator(":");
                    pairs.Add((key, ParseConditional(allowConditional: true)));
                }
                Next();
                return new DictExpr(pairs, token.Line);
            default:
                throw Error($"unexpected {token} in expression", token.Line);
        }
    }

    Expr Advance(Func<Expr> parse)
    {
        Next();
        return parse();
    }

    Token Expect(TokenKind kind)
    {
        var token = Next();
        if (token.Kind != kind) throw Error($"expected {Describe(kind)}, got {token}", token.Line);
        return token;
    }

    void ExpectOperator(string op)
    {
        var token = Next();
        if (!token.Is(TokenKind.Operator, op)) throw Error($"expected '{op}', got {token}", token.Line);
    }

    void ExpectName(string name)
    {
        var token = Next();
        if (!token.Is(TokenKind.Name, name)) throw Error($"expected '{name}', got {token}", token.Line);
    }

    static string Describe(TokenKind kind) => kind switch
    {
        TokenKind.VarEnd => "'}}'",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.Name => "a name",
        _ => kind.ToString(),
    };

    SharpTuneException Error(string problem, int line) => new($"{sourceName}: line {line}: {problem}");
}
