//! What the derive's generated code uses. Not public API: no stability guarantees.

use std::fmt::Display;

use serde::de::{self, Deserialize, Deserializer, IntoDeserializer as _};
use serde::ser::{self, Serialize, Serializer};

pub use serde;

/// The text of a label value. Spanned at the field's type by the derive, so a type without
/// `Display` is reported there.
#[inline]
pub fn label_value<T: Display + ?Sized>(value: &T) -> String {
    value.to_string()
}

/// `String`, for the signature of a generated `ordering_key`.
pub use std::string::String;

/// The ordering key of a field: its `Display` text. Spanned at the field's type by the derive, so
/// a type without `Display` is reported there.
#[inline]
pub fn ordering_key<T: Display + ?Sized>(value: &T) -> Option<String> {
    Some(value.to_string())
}

/// The ordering key of an `Option<T>` field: `T`'s `Display` text when it is `Some`. Spanned at
/// `T` by the derive.
#[inline]
pub fn optional_ordering_key<T: Display>(value: &Option<T>) -> Option<String> {
    value.as_ref().map(T::to_string)
}

/// A serializer that writes an enum variant's *content* without serde's variant tag: a unit
/// variant as `null`, a newtype variant as its value, a tuple variant as an array, a struct
/// variant as an object. Everything else passes through unchanged, so the user's field
/// attributes and any other enum representation are honoured.
#[derive(Debug)]
pub struct VariantContent<S>(S);

impl<S> VariantContent<S> {
    /// Wraps the serializer.
    #[inline]
    pub fn new(serializer: S) -> Self {
        VariantContent(serializer)
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[inline]
            fn $method(self, $($arg: $ty),*) -> Result<Self::Ok, Self::Error> {
                self.0.$method($($arg),*)
            }
        )*
    };
}

impl<S: Serializer> Serializer for VariantContent<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = S::SerializeSeq;
    type SerializeTuple = S::SerializeTuple;
    type SerializeTupleStruct = S::SerializeTupleStruct;
    type SerializeTupleVariant = TupleContent<S::SerializeTuple>;
    type SerializeMap = S::SerializeMap;
    type SerializeStruct = S::SerializeStruct;
    type SerializeStructVariant = StructContent<S::SerializeStruct>;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(value)
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, value)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(self.0)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<S::SerializeSeq, S::Error> {
        self.0.serialize_seq(len)
    }

    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<S::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len)
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<S::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple(len).map(TupleContent)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<S::SerializeMap, S::Error> {
        self.0.serialize_map(len)
    }

    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<S::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0.serialize_struct(variant, len).map(StructContent)
    }

    #[inline]
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.collect_str(value)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A tuple variant's fields, written as a plain tuple.
#[derive(Debug)]
pub struct TupleContent<T>(T);

impl<T: ser::SerializeTuple> ser::SerializeTupleVariant for TupleContent<T> {
    type Ok = T::Ok;
    type Error = T::Error;

    #[inline]
    fn serialize_field<F: Serialize + ?Sized>(&mut self, value: &F) -> Result<(), T::Error> {
        self.0.serialize_element(value)
    }

    #[inline]
    fn end(self) -> Result<T::Ok, T::Error> {
        self.0.end()
    }
}

/// A struct variant's fields, written as a plain struct.
#[derive(Debug)]
pub struct StructContent<T>(T);

impl<T: ser::SerializeStruct> ser::SerializeStructVariant for StructContent<T> {
    type Ok = T::Ok;
    type Error = T::Error;

    #[inline]
    fn serialize_field<F: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &F,
    ) -> Result<(), T::Error> {
        self.0.serialize_field(key, value)
    }

    #[inline]
    fn skip_field(&mut self, key: &'static str) -> Result<(), T::Error> {
        self.0.skip_field(key)
    }

    #[inline]
    fn end(self) -> Result<T::Ok, T::Error> {
        self.0.end()
    }
}

/// A deserializer that reads an enum variant's *content*, as [`VariantContent`] wrote it, into
/// the variant chosen by the event name. When serde's impl asks for an enum, the variant
/// identifier is answered with the variant's index among the deserializable variants (serde's
/// identifiers take `visit_u64(index)`) and the content is read from the inner deserializer.
/// Everything else passes through unchanged, so an enum with another serde representation is
/// read by serde's impl as it is.
#[derive(Debug)]
pub struct VariantContentDeserializer<D> {
    inner: D,
    index: u32,
    /// The variant's name, for a struct variant's `deserialize_struct`.
    variant: &'static str,
}

impl<D> VariantContentDeserializer<D> {
    /// Wraps the deserializer of the content of the variant at `index`, named `variant`.
    #[inline]
    pub fn new(inner: D, index: u32, variant: &'static str) -> Self {
        VariantContentDeserializer {
            inner,
            index,
            variant,
        }
    }
}

/// The error for an event name that no deserializable variant has.
#[cold]
pub fn no_variant<E: de::Error>(event_type: &str) -> E {
    E::custom(format_args!(
        "no variant of this type can be deserialized for event `{event_type}`"
    ))
}

macro_rules! forward_de {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            #[inline]
            fn $method<V: de::Visitor<'de>>(
                self,
                $($arg: $ty,)*
                visitor: V,
            ) -> Result<V::Value, D::Error> {
                self.inner.$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for VariantContentDeserializer<D> {
    type Error = D::Error;

    forward_de! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    #[inline]
    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    #[inline]
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<'de, D: Deserializer<'de>> de::EnumAccess<'de> for VariantContentDeserializer<D> {
    type Error = D::Error;
    type Variant = Self;

    #[inline]
    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), D::Error> {
        let variant = seed.deserialize(self.index.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de, D: Deserializer<'de>> de::VariantAccess<'de> for VariantContentDeserializer<D> {
    type Error = D::Error;

    /// A unit variant's content is `null`.
    #[inline]
    fn unit_variant(self) -> Result<(), D::Error> {
        <() as Deserialize<'de>>::deserialize(self.inner)
    }

    #[inline]
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, D::Error> {
        seed.deserialize(self.inner)
    }

    #[inline]
    fn tuple_variant<V: de::Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple(len, visitor)
    }

    #[inline]
    fn struct_variant<V: de::Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_struct(self.variant, fields, visitor)
    }
}

/// `#[webhook(example = "f")]`: calls `f`, which must be a `fn() -> Self`.
#[inline]
pub fn example<T>(f: fn() -> T) -> T {
    f()
}

pub use serde_json;

/// What the derived `fn data_schema` is made of. Present with or without the `schema` feature,
/// so that the derive (which cannot see the features) writes the same code either way: without
/// it, [`schema::build`] returns `None` and no type has a [`schema::Known`] schema.
pub mod schema {
    use std::marker::PhantomData;

    use serde_json::{Map, Value, json};

    /// The generator the fields' schemas come from.
    #[cfg(feature = "schema")]
    pub type Generator = schemars::SchemaGenerator;

    /// The generator the fields' schemas come from (here, without the `schema` feature, none).
    #[cfg(not(feature = "schema"))]
    #[derive(Debug)]
    pub struct Generator(());

    /// Runs `f` with a generator that inlines every subschema, so that a schema stands alone
    /// wherever it is embedded (an OpenAPI document, a page).
    #[cfg(feature = "schema")]
    pub fn build(f: impl FnOnce(&mut Generator) -> Option<Value>) -> Option<Value> {
        let mut generator = schemars::generate::SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator();
        f(&mut generator)
    }

    /// Without the `schema` feature: no schema.
    #[cfg(not(feature = "schema"))]
    pub fn build(f: impl FnOnce(&mut Generator) -> Option<Value>) -> Option<Value> {
        let _ = f;
        None
    }

    /// A field's type, to pick its schema by autoref: [`Known`] when it has one, else [`Any`].
    #[derive(Debug)]
    pub struct Of<T: ?Sized>(pub PhantomData<T>);

    /// The schema of a type with `JsonSchema`.
    pub trait Known {
        /// The schema.
        fn schema(&self, generator: &mut Generator) -> Value;
    }

    #[cfg(feature = "schema")]
    impl<T: schemars::JsonSchema + ?Sized> Known for Of<T> {
        fn schema(&self, generator: &mut Generator) -> Value {
            generator.subschema_for::<T>().to_value()
        }
    }

    /// Any value: a type without `JsonSchema`.
    pub trait Any {
        /// `{}`.
        fn schema(&self, generator: &mut Generator) -> Value;
    }

    impl<T: ?Sized> Any for &Of<T> {
        fn schema(&self, _: &mut Generator) -> Value {
            json!({})
        }
    }

    /// An object of named fields: `(name, schema, required)`.
    pub fn object(fields: Vec<(&str, Value, bool)>) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (name, schema, is_required) in fields {
            if is_required {
                required.push(Value::from(name));
            }
            properties.insert(name.to_owned(), schema);
        }
        json!({ "type": "object", "properties": properties, "required": required })
    }

    /// A tuple: an array of exactly these items.
    pub fn tuple(items: Vec<Value>) -> Value {
        let n = items.len();
        json!({ "type": "array", "prefixItems": items, "minItems": n, "maxItems": n })
    }

    /// A field's schema with its doc comment as `description` (a `$ref` or `true` is wrapped).
    pub fn describe(schema: Value, description: &str) -> Value {
        match schema {
            Value::Object(mut object) if !object.contains_key("$ref") => {
                object.insert("description".to_owned(), Value::from(description));
                Value::Object(object)
            }
            other => json!({ "allOf": [other], "description": description }),
        }
    }

    /// A unit struct or variant: `null`.
    pub fn unit() -> Value {
        json!({ "type": "null" })
    }
}
