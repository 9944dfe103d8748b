using System.Globalization;

namespace SharpTune.Templates.Jinja;

/// <summary>Jinja2 expressions, lowest precedence first, with the precedence of Jinja's own parser.</summary>
sealed partial class JinjaParser
{
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

    /// <remarks>Chained comparisons mean what they do in Python: <c>a &lt; b &lt; c</c> is <c>a &lt; b and b &lt; c</c>.</remarks>
    Expr ParseCompare()
    {
        var left = ParseConcat();
        Expr? chain = null;
        while (true)
        {
            var token = Current;
            string op;
            if (token.Kind == TokenKind.Operator && token.Value is "==" or "!=" or "<" or "<=" or ">" or ">=") op = token.Value;
            else if (token.Is(TokenKind.Name, "in")) op = "in";
            else if (token.Is(TokenKind.Name, "not") && tokens[index + 1].Is(TokenKind.Name, "in"))
            {
                Next();
                op = "not in";
            }
            else return chain ?? left;
            var right = Advance(ParseConcat);
            var comparison = new BinaryExpr(op, left, right, token.Line);
            chain = chain == null ? comparison : new BinaryExpr("and", chain, comparison, token.Line);
            left = right;
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
}
