namespace SharpTune.Templates.Jinja;

/// <summary>Recursive-descent parser for Jinja2 statements; expressions are in JinjaParser.Expressions.cs.</summary>
sealed partial class JinjaParser(List<Token> tokens, string sourceName)
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
